//! The page: heading, search form and status line. It starts the model download on mount, keeps
//! the loaded [`Model`] for the session, and shows what encoding a query gives (the first values
//! of the vector and how long it took) until the results grid replaces that line.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::{MODEL_BASE, Model, Stage, megabytes};

/// How many leading values of the query vector the page shows.
const SHOWN_VALUES: usize = 8;

/// What the status line says about the model.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Loading(String),
    Ready { bytes: u64 },
    Failed(String),
}

impl Status {
    fn text(&self) -> String {
        match self {
            Status::Loading(stage) => stage.clone(),
            Status::Ready { bytes } => format!("model ready ({})", megabytes(*bytes)),
            Status::Failed(reason) => reason.clone(),
        }
    }
}

/// What the last query gave.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Encoded {
        head: Vec<f32>,
        dim: usize,
        millis: f64,
    },
    Failed(String),
}

impl Outcome {
    fn text(&self) -> String {
        match self {
            Outcome::Encoded { head, dim, millis } => {
                let values: Vec<String> = head.iter().map(|v| format!("{v:.4}")).collect();
                format!(
                    "[{}, …] ({dim} values), encoded in {millis:.1} ms",
                    values.join(", ")
                )
            }
            Outcome::Failed(reason) => format!("cannot encode the query: {reason}"),
        }
    }
}

/// Milliseconds from the page's high-resolution clock.
fn now_ms() -> f64 {
    // Without a window (never on this page) timings read as zero rather than failing a search.
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let (status, set_status) = signal(Status::Loading("starting…".into()));
    let (query, set_query) = signal(String::new());
    let (outcome, set_outcome) = signal(None::<Outcome>);
    // Only a search reads the model, so it needs no reactivity; `Rc` is not `Send`, hence local.
    let model = StoredValue::new_local(None::<Rc<Model>>);

    spawn_local(async move {
        let progress = |stage: Stage| set_status.set(Status::Loading(stage.to_string()));
        match Model::load(MODEL_BASE, progress).await {
            Ok(loaded) => {
                let bytes = loaded.bytes;
                model.set_value(Some(Rc::new(loaded)));
                set_status.set(Status::Ready { bytes });
            }
            Err(e) => set_status.set(Status::Failed(e.to_string())),
        }
    });

    let search = move |ev: leptos::ev::SubmitEvent| {
        // The form only triggers the search; the page never navigates.
        ev.prevent_default();
        let text = query.get_untracked();
        let Some(m) = model.get_value() else {
            let why = match status.get_untracked() {
                Status::Failed(_) => "no model is loaded (see the status line)",
                _ => "the model is still loading",
            };
            set_outcome.set(Some(Outcome::Failed(why.into())));
            return;
        };
        let start = now_ms();
        let result = m.embed(&text);
        let millis = now_ms() - start;
        set_outcome.set(Some(match result {
            Ok(v) => Outcome::Encoded {
                head: v.iter().take(SHOWN_VALUES).copied().collect(),
                dim: v.len(),
                millis,
            },
            Err(e) => Outcome::Failed(e.to_string()),
        }));
    };

    view! {
        <main>
            <h1>"text2img"</h1>
            <p>"Search a photo collection by describing what you are looking for."</p>
            <form role="search" on:submit=search>
                <label for="query">"Describe the image"</label>
                <input
                    id="query"
                    name="q"
                    type="search"
                    autocomplete="off"
                    placeholder="a dog on a beach"
                    prop:value=query
                    on:input=move |ev| set_query.set(event_target_value(&ev))
                />
                <button type="submit">"Search"</button>
            </form>
            <p id="status" role="status" aria-live="polite">{move || status.get().text()}</p>
            <p id="result" aria-live="polite">{move || outcome.get().map(|o| o.text())}</p>
        </main>
    }
}
