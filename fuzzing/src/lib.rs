//! fuzz-targets: does any input from outside make the proxy panic or answer nonsense?
//!
//! Three targets, each a function from arbitrary bytes to an [`Outcome`], panicking when an
//! invariant breaks:
//!
//! - [`image`]: image file bytes → model pixels and thumbnail, as ingest's decode stage does it
//!   (`ingest::prepare`, with the ingest processor's size limits), plus the byte sniffing a
//!   fetched body goes through first;
//! - [`tsv`]: `images.tsv` text → rows and row errors (`ingest::tsv::parse`);
//! - [`json_body`]: a request body for `POST /api/search`, `/api/similar` or `/api/feedback`,
//!   parsed as the `wire` request types and sent through the real router in-process.
//!
//! The same functions run under cargo-fuzz (`fuzz/`, coverage-guided, nightly), under the stable
//! runner (`src/bin/fuzz.rs`, random mutation with the outcome as feedback), and in the replay
//! test over the committed seeds and regression inputs (`tests/replay.rs`). `fuzz/README.md` says
//! how to run them and what the runs found.

pub mod image;
pub mod json_body;
pub mod tsv;

pub use image::image;
pub use json_body::json_body;
pub use tsv::tsv;

use std::path::{Path, PathBuf};

/// What an input exercised, in a few words without its numbers or quotes (`ok png`, `400 bad_limit`, `row
/// error: empty url`): the stable runner keeps an input that gives an outcome it has not seen.
pub type Outcome = String;

/// A fuzz target: panics when an invariant breaks.
pub type Target = fn(&[u8]) -> Outcome;

/// The targets, by name.
pub const TARGETS: [(&str, Target); 3] = [("image", image), ("tsv", tsv), ("json_body", json_body)];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The committed seed inputs of `target` (`fuzzing/seeds/<target>`).
pub fn seeds_dir(target: &str) -> PathBuf {
    crate_dir().join("seeds").join(target)
}

/// The committed inputs that once broke `target` (`fuzzing/regressions/<target>`).
pub fn regressions_dir(target: &str) -> PathBuf {
    crate_dir().join("regressions").join(target)
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shape of a message: its first words, letters only, quotes left out (`17 fields` and `18
/// fields` count as one, and so do two errors that quote different input).
pub fn shape(text: &str) -> String {
    let mut out = String::with_capacity(48);
    let mut quoted = false;
    for c in text.chars() {
        if out.len() >= 48 {
            break;
        }
        if c == '"' || c == '`' {
            quoted = !quoted;
        } else if quoted {
            continue;
        } else if c.is_ascii_alphabetic() || c == '_' {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}
