//! libFuzzer over `fuzz_targets::image` (fuzzing/src/image.rs says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_targets::image(data);
});
