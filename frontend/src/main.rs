//! The text2img browser app (Leptos, client-side rendered, built by trunk into `public/`): it
//! loads the CLIP text model published under `model/` and encodes search queries in the browser.
//!
//! [`model`] owns downloading and running the model; [`view`] owns the page.

mod model;
mod view;

fn main() {
    // Panics show up in the browser console with their message instead of "unreachable".
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(view::App);
}
