//! The text2img browser app: a Leptos page ([`ui`]) and a Web Worker ([`worker`]) that turns the
//! query text into a CLIP vector, so the text never leaves the browser. They speak the messages
//! of [`wire::worker`]. Two wasm binaries (`src/main.rs`, `src/bin/worker.rs`) start one side
//! each; trunk builds both into `public/`.

pub mod ui;
pub mod worker;

/// `12.3 MB` (decimal megabytes, as download sizes are usually given).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes_are_decimal() {
        assert_eq!(megabytes(67_800_000), "67.8 MB");
        assert_eq!(megabytes(0), "0.0 MB");
    }
}
