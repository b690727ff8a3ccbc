//! The text2img search page (Leptos, [`ui`]). The query text is turned into a CLIP vector by the
//! model worker — another crate and another wasm binary, running in a Web Worker — so the text
//! never leaves the browser; the page speaks to it only in [`wire::worker`]'s messages and never
//! links `clip`. `src/main.rs` mounts the page; trunk builds it and the worker into `public/`.

pub mod query;
pub mod ui;

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
