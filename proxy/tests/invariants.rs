//! The Architecture Invariants of ARCHITECTURE.md that reading the source can check: each test
//! scans the workspace's non-test Rust files and names the file and line that breaks a rule.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under `dir` (relative to the workspace), outside `tests/` folders.
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![workspace().join(dir)];
    while let Some(path) = stack.pop() {
        let entries = std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let name = path
                    .strip_prefix(workspace())
                    .expect("under the workspace")
                    .display()
                    .to_string();
                out.push((name, text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out.sort();
    out
}

/// The code of a file without its `#[cfg(test)]` module (unit tests may use anything).
fn code(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

/// A line with its string literals emptied (`"a::b"` → `""`), to look for names in code only.
fn without_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in line.chars() {
        match (in_string, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, _, '"') => {
                in_string = !in_string;
                out.push('"');
            }
            (true, false, _) => {}
            (false, _, _) => out.push(c),
        }
    }
    out
}

/// Lines of files outside `allowed` (path prefixes) whose code (not their strings) contains
/// any of `names`.
fn names_in_code(dir: &str, allowed: &[&str], names: &[&str]) -> Vec<String> {
    offenders(dir, allowed, names)
        .into_iter()
        .filter(|found| {
            let line = found.splitn(3, ':').nth(2).unwrap_or("");
            let code = without_strings(line);
            names.iter().any(|n| code.contains(n))
        })
        .collect()
}

/// Lines of files outside `allowed` (path prefixes) that contain any of `needles`.
fn offenders(dir: &str, allowed: &[&str], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in sources(dir) {
        if allowed.iter().any(|a| name.starts_with(a)) {
            continue;
        }
        for (i, line) in code(&text).lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| line.contains(n)) {
                found.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

fn check(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}:\n{}", found.join("\n"));
}

#[test]
fn string_literals_are_not_code() {
    assert_eq!(without_strings(r#"let a = "x::y";"#), r#"let a = "";"#);
    assert_eq!(without_strings(r#"f("a\"b", c::d)"#), r#"f("", c::d)"#);
    assert_eq!(
        without_strings("use qdrant_edge::X;"),
        "use qdrant_edge::X;"
    );
}

#[test]
fn only_the_store_knows_qdrant() {
    check(
        "nothing outside proxy/src/store/ names a qdrant_edge or qdrant_client type",
        names_in_code(
            "proxy/src",
            &["proxy/src/store/"],
            &["qdrant_edge", "qdrant_client"],
        ),
    );
}

#[test]
fn only_http_knows_status_codes() {
    check(
        "status codes appear only in proxy/src/http/",
        offenders("proxy/src", &["proxy/src/http/"], &["StatusCode"]),
    );
    check(
        "axum is used only by proxy/src/http/ (and main.rs, which starts the server)",
        offenders(
            "proxy/src",
            &["proxy/src/http/", "proxy/src/main.rs"],
            &["axum::"],
        ),
    );
}

#[test]
fn only_errors_rs_maps_errors_to_statuses() {
    check(
        "proxy/src/http/errors.rs is the one place a failure becomes a status",
        offenders(
            "proxy/src/http",
            &["proxy/src/http/errors.rs"],
            &[
                "StatusCode::BAD_REQUEST",
                "StatusCode::NOT_FOUND",
                "StatusCode::SERVICE_UNAVAILABLE",
                "StatusCode::INTERNAL_SERVER_ERROR",
                "StatusCode::TOO_MANY_REQUESTS",
                "StatusCode::PAYLOAD_TOO_LARGE",
                "StatusCode::UNAUTHORIZED",
                "StatusCode::FORBIDDEN",
                "status: StatusCode",
            ],
        ),
    );
}

#[test]
fn wire_types_are_used_only_by_http() {
    check(
        "the proxy speaks the wire crate's types only in proxy/src/http/ (labels.rs stores wire's \
         Verdict with each vote)",
        names_in_code(
            "proxy/src",
            &["proxy/src/http/", "proxy/src/labels.rs"],
            &["wire::"],
        ),
    );
}

#[test]
fn the_payload_is_defined_once() {
    check(
        "the names of ingest's payload fields appear only in proxy/src/payload.rs",
        offenders(
            "proxy/src",
            &["proxy/src/payload.rs"],
            &[
                "\"content_hash\"",
                "\"row_hash\"",
                "\"file\"",
                "payload.get(\"id\")",
            ],
        ),
    );
}

#[test]
fn storage_paths_are_named_once() {
    check(
        "files under the storage directory are named only in proxy/src/layout.rs",
        offenders(
            "proxy/src",
            &["proxy/src/layout.rs"],
            &[
                "\"labels.jsonl\"",
                "\"reviews.jsonl\"",
                "\"thumbs\"",
                "\"ingest-failures.tsv\"",
            ],
        ),
    );
}

#[test]
fn library_code_never_prints() {
    check(
        "library code never prints (binaries and examples report through tracing and progress bars)",
        offenders(
            "proxy/src",
            &["proxy/src/main.rs", "proxy/src/bin/"],
            &["println!", "print!(", "eprintln!", "eprint!(", "dbg!("],
        ),
    );
    check(
        "clip never prints",
        offenders(
            "clip/src",
            &[],
            &["println!", "print!(", "eprintln!", "eprint!(", "dbg!("],
        ),
    );
}

#[test]
fn clip_does_io_only_in_load_rs() {
    check(
        "clip's core does no I/O: files and the network only in clip/src/load.rs",
        offenders(
            "clip/src",
            &["clip/src/load.rs"],
            &["std::fs", "File::", "std::net", "hf_hub"],
        ),
    );
}
