//! How a test that cannot run says so where CI will find it. A skipped test passes, so the test
//! harness would swallow anything it prints; [`skip`] writes one line, starting with
//! [`MARKER`], straight to the process's standard error (past the harness's capture), and
//! appends the same line to the file named by `TEXT2IMG_SKIP_LOG` when that is set: `.ci/test`
//! sets it and lists every skip at the end of its log.
//!
//! The line reads `SKIPPED: <test>: <reason>`. `clip/tests/cuda.rs` cannot use this crate (it
//! would build `clip` twice) and writes the same line itself.

use std::io::Write;

/// The start of every skip line.
pub const MARKER: &str = "SKIPPED:";

/// The variable that names the file skip lines are appended to.
pub const LOG_VAR: &str = "TEXT2IMG_SKIP_LOG";

/// Reports that the calling test did not run, and why; the caller then returns.
pub fn skip(reason: &str) {
    let line = line(std::thread::current().name(), reason);
    // Straight to stderr: `eprintln!` is captured by the harness for passing tests.
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
    if let Some(path) = std::env::var_os(LOG_VAR).filter(|p| !p.is_empty()) {
        // One write of the whole line in append mode: lines of tests running in parallel do not
        // interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            let _ = writeln!(
                std::io::stderr(),
                "(could not add the skip to {}: {e})",
                std::path::Path::new(&path).display()
            );
        }
    }
}

/// The skip line of `test` (the harness names each test's thread after it).
fn line(test: Option<&str>, reason: &str) -> String {
    match test {
        Some(name) if name != "main" => format!("{MARKER} {name}: {reason}"),
        _ => format!("{MARKER} {reason}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_starts_with_the_marker_and_names_the_test() {
        assert_eq!(
            super::line(Some("store::remote"), "needs QDRANT_URL"),
            "SKIPPED: store::remote: needs QDRANT_URL"
        );
        assert_eq!(super::line(None, "no GPU"), "SKIPPED: no GPU");
    }
}
