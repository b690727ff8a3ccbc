//! The page's wasm entry point: see `frontend::ui`.

fn main() {
    // Panics show up in the browser console with their message instead of "unreachable".
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(frontend::ui::App);
}
