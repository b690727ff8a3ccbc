//! The model worker's wasm entry point (trunk builds it with `data-type="worker"`): see
//! `frontend::worker`.

fn main() {
    frontend::worker::run();
}
