//! The model's section of the page: the status line (loading, ready, failed, or server-side
//! encoding, in words), the download's progress bar, **Retry**, and the precision select.

use leptos::prelude::*;
use wire::Variant;

use super::encoder::ModelState;
use super::{Ctx, VARIANT_KEY, local_storage};
use crate::megabytes;

/// The status line's words for the model.
fn model_status(state: &ModelState) -> String {
    match state {
        ModelState::Starting => "Starting the model…".into(),
        ModelState::Loading { loaded, total } => {
            let percent = if *total == 0 { 0 } else { loaded * 100 / total };
            format!(
                "Loading the text model: {} of {} ({percent}%)…",
                megabytes(*loaded),
                megabytes(*total)
            )
        }
        ModelState::Ready {
            variant,
            downloaded,
            cached,
            millis,
        } => {
            let source = match (*downloaded, *cached) {
                (0, _) => "from this browser's cache".to_string(),
                (d, 0) => format!("{} downloaded", megabytes(d)),
                (d, _) => format!("{} downloaded, the rest cached", megabytes(d)),
            };
            format!(
                "Model ready ({variant}, {source}, {:.1} s): your query text stays in this browser.",
                millis / 1000.0
            )
        }
        ModelState::Failed(why) => format!("The model did not load: {why}"),
        ModelState::Server(why) => format!(
            "Searching with server-side encoding: {why}. Your query text is sent to the search server."
        ),
    }
}

fn variant_label(variant: Variant, bytes: u64) -> String {
    let kind = match variant {
        Variant::Q5 => "5-bit",
        Variant::Q8 => "8-bit",
        Variant::F16 => "16-bit",
        Variant::F32 => "32-bit",
    };
    format!("{kind} ({})", megabytes(bytes))
}

/// The status line, the progress bar while the model downloads, **Retry** after a failure, and
/// the precision select when the server offers more than one.
#[component]
pub fn ModelStatus(ctx: Ctx) -> impl IntoView {
    let failed = move || matches!(ctx.model.get(), ModelState::Failed(_));
    let server_side = move || matches!(ctx.model.get(), ModelState::Server(_));
    let progress = move || match ctx.model.get() {
        ModelState::Loading { loaded, total } => Some(view! {
            <progress id="model-progress" max=total.to_string() value=loaded.to_string()
                aria-label="Model download"></progress>
        }),
        _ => None,
    };
    let variants = move || {
        if server_side() {
            None
        } else {
            variant_select(ctx)
        }
    };
    view! {
        <section class="model" aria-label="Model">
            <p id="status" role="status" aria-live="polite" class:server=server_side class:failed=failed>
                {move || model_status(&ctx.model.get())}
            </p>
            {progress}
            <Show when=failed>
                <button id="retry" type="button" on:click=move |_| retry(ctx)>"Retry"</button>
            </Show>
            {variants}
        </section>
    }
}

/// Loads the model again; when the page itself did not start (a broken `settings.json`), starts
/// the page again.
fn retry(ctx: Ctx) {
    match ctx.encoder.get_value() {
        Some(encoder) => {
            ctx.model.set(ModelState::Starting);
            encoder.load();
        }
        None => {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
    }
}

/// The precision select, when the server offers more than one variant. A choice is kept in
/// localStorage and loaded at once.
fn variant_select(ctx: Ctx) -> Option<impl IntoView> {
    let info = ctx.info.get();
    if info.variants.len() <= 1 {
        return None;
    }
    let change = move |ev: leptos::ev::Event| {
        let Ok(variant) = Variant::parse(&event_target_value(&ev)) else {
            return;
        };
        if let Some(s) = local_storage() {
            let _ = s.set_item(VARIANT_KEY, variant.as_str());
        }
        if let Some(encoder) = ctx.encoder.get_value() {
            ctx.model.set(ModelState::Starting);
            encoder.set_variant(variant);
        }
    };
    let options = info
        .variants
        .iter()
        .map(|v| {
            let selected = Some(v.name) == info.variant;
            view! { <option value=v.name.as_str() selected=selected>{variant_label(v.name, v.bytes)}</option> }
        })
        .collect_view();
    Some(view! {
        <label class="variant">
            "Model precision "
            <select id="variant" on:change=change>{options}</select>
        </label>
    })
}
