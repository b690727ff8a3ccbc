//! The model worker's wasm entry point (trunk builds it with `data-type="worker"`): see
//! [`worker`].

mod worker;

fn main() {
    worker::run();
}
