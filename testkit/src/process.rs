//! How a test starts a child process (`ingest`, `proxy`, chromedriver, …) that sees none of the
//! developer's settings: [`command`] is `std::process::Command::new` with every variable the
//! project reads removed ([`PROJECT_ENV`], and anything else named `QDRANT_*` or `TEXT2IMG_*`),
//! so that, say, `QDRANT_URL` exported for the remote store suite never points the end-to-end
//! tests' binaries at that server. A test that means to set one of them sets it on the command
//! it gets back. [`PROJECT_ENV`] is built from the proxy's own list of settings, and a test below
//! reads the sources for every variable they look up, so the list cannot fall behind.

use std::ffi::OsStr;
use std::process::Command;

use proxy::config::KEYS;

/// Variables the binaries read besides the settings in [`KEYS`]: the log filter (`cli.rs`,
/// tracing's `EnvFilter`) and the model hub's cache and mirror (`clip::load`).
const OTHER_ENV: [&str; 3] = ["RUST_LOG", "HF_HOME", "HF_ENDPOINT"];

/// Every environment variable the project's binaries read: the settings of `qdrant.env`
/// (`proxy::config::KEYS`: `QDRANT_*`, `TEXT2IMG_*`) and [`OTHER_ENV`].
pub const PROJECT_ENV: [&str; KEYS.len() + OTHER_ENV.len()] = {
    let mut all = [""; KEYS.len() + OTHER_ENV.len()];
    let mut i = 0;
    while i < KEYS.len() {
        all[i] = KEYS[i];
        i += 1;
    }
    let mut j = 0;
    while j < OTHER_ENV.len() {
        all[i + j] = OTHER_ENV[j];
        j += 1;
    }
    all
};

/// Variables with these prefixes are the project's (settings, CI switches such as
/// `TEXT2IMG_SKIP_LOG`): removed too, whether listed or not.
const PROJECT_PREFIXES: [&str; 2] = ["QDRANT_", "TEXT2IMG_"];

/// A command for `program` with a clean environment: every variable in [`PROJECT_ENV`] and every
/// `QDRANT_*` / `TEXT2IMG_*` variable removed, and `NO_COLOR=1` (plain output for the checks).
/// Everything else (`PATH`, `HOME`, …) is inherited.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for key in PROJECT_ENV {
        command.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| PROJECT_PREFIXES.iter().any(|p| k.starts_with(p)))
        {
            command.env_remove(&key);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

/// A free local port (bound once, then released for a child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The variables the sources of the binaries (`proxy/src`, `clip/src`) read at run time:
    /// every string literal named like a project variable (`QDRANT_*`, `TEXT2IMG_*`, `HF_*`,
    /// `RUST_*`), every literal passed to `env::var`/`var_os`, and `RUST_LOG` where tracing's
    /// `EnvFilter` reads its default variable.
    fn variables_in_sources() -> Vec<(String, String)> {
        let mut files = Vec::new();
        let root = crate::workspace();
        for dir in ["proxy/src", "clip/src"] {
            rust_files(&root.join(dir), &mut files);
        }
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            let name = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            if text.contains("from_default_env") {
                found.push(("RUST_LOG".to_string(), name.clone()));
            }
            for (start, _) in text.match_indices('"') {
                let rest = &text[start + 1..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                let (literal, after) = rest.split_at(len);
                if literal.is_empty() || !after.starts_with('"') {
                    continue;
                }
                let before = &text[..start];
                let read_at_run_time = ["env::var(", "env::var_os(", "var_os(", "var("]
                    .iter()
                    .any(|call| before.ends_with(call));
                let project_named = ["QDRANT_", "TEXT2IMG_", "HF_", "RUST_"]
                    .iter()
                    .any(|p| literal.starts_with(p));
                if read_at_run_time || project_named {
                    found.push((literal.to_string(), name.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn every_variable_the_sources_read_is_cleaned() {
        let found = variables_in_sources();
        // The scan itself works: the settings and the hub mirror are found.
        for known in [
            "QDRANT_URL",
            "TEXT2IMG_ADMIN_TOKEN",
            "HF_ENDPOINT",
            "RUST_LOG",
        ] {
            assert!(
                found.iter().any(|(v, _)| v == known),
                "the scan missed {known}"
            );
        }
        let missing: Vec<String> = found
            .iter()
            .filter(|(v, _)| !PROJECT_ENV.contains(&v.as_str()))
            .map(|(v, file)| format!("{v} ({file})"))
            .collect();
        assert!(
            missing.is_empty(),
            "variables the binaries read that testkit::PROJECT_ENV does not clean: {missing:?}"
        );
    }

    #[test]
    fn the_command_removes_project_variables_and_keeps_the_rest() {
        let command = command("true");
        let envs: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        for key in PROJECT_ENV {
            assert!(
                envs.contains(&(key.to_string(), None)),
                "{key} is not removed"
            );
        }
        assert!(envs.contains(&("NO_COLOR".to_string(), Some("1".to_string()))));
        assert!(!envs.iter().any(|(k, _)| k == "PATH"), "PATH is inherited");
        // A variable set after is set: a test that means to pass one passes it.
        let mut command = super::command("true");
        command.env("QDRANT_URL", "http://127.0.0.1:1");
        assert!(
            command
                .get_envs()
                .any(|(k, v)| k == "QDRANT_URL" && v == Some(OsStr::new("http://127.0.0.1:1")))
        );
    }
}
