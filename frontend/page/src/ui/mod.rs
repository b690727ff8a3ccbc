//! The page: a search box, the model's status ([`status`]: progress bar, retry, variant), and
//! the results grid with relevance and flag buttons. The query is encoded by the model worker
//! ([`encoder`]), so only its vector goes to the proxy ([`api`]); [`actions`] are what the
//! buttons do; [`results`] draws the grid and owns its keyboard.
//!
//! Page state lives in [`Ctx`], a bundle of signals that every action takes by copy. `#review`
//! opens the admin [`review`] page instead.

mod actions;
pub mod api;
pub mod encoder;
mod results;
pub mod review;
mod status;
mod syntax;

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wire::{Hit, Variant, Verdict};

use api::{Api, Query, Settings};
use encoder::{Encoder, ModelInfo, ModelState};

/// localStorage keys.
const CLIENT_ID_KEY: &str = "text2img.client_id";
const VARIANT_KEY: &str = "text2img.variant";

/// Where a page of results came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A typed query and what was sent for it (a vector, the text itself when the server
    /// encoded it, or weighted terms). `like`: the visitor's marks it was searched again with
    /// ("More like the ones I marked"), if any.
    Text {
        text: String,
        query: Query,
        like: Option<api::Examples>,
    },
    /// "Similar" on one image.
    Similar { id: String, caption: String },
}

/// The results on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub source: Source,
    pub hits: Vec<Hit>,
    pub next_offset: Option<usize>,
    /// What the scores are: the vectors the ranking compared.
    pub vectors: wire::Vectors,
    /// Milliseconds the browser took to encode the query.
    pub encode_ms: Option<f64>,
    pub took_ms: f64,
    /// What "back" returns to (the text results a "similar" page came from).
    pub back: Option<Box<Page>>,
}

/// One result's vote as this browser cast it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// `Verdict::None`: no vote (never cast, or withdrawn).
    pub label: Verdict,
    pub note: String,
    pub saving: bool,
    pub error: Option<String>,
    /// Answers to older clicks must not overwrite newer ones.
    seq: u32,
}

/// The page's state; `Copy`, so closures take it freely.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    api: StoredValue<Api>,
    encoder: StoredValue<Option<Rc<Encoder>>, LocalStorage>,
    client_id: StoredValue<String>,
    model: RwSignal<ModelState>,
    info: RwSignal<ModelInfo>,
    page: RwSignal<Option<Page>>,
    /// What the page is doing right now ("Searching…"), if anything.
    busy: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    /// What is wrong with the query typed, shown beside the box.
    query_error: RwSignal<Option<String>>,
    more_busy: RwSignal<bool>,
    votes: RwSignal<HashMap<String, Vote>>,
    /// Bumped by every search, so a slow answer to an old one is dropped.
    search_seq: StoredValue<u32>,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            api: StoredValue::new(Api::new("")),
            encoder: StoredValue::new_local(None),
            client_id: StoredValue::new(client_id()),
            model: RwSignal::new(ModelState::Starting),
            info: RwSignal::new(ModelInfo::default()),
            page: RwSignal::new(None),
            busy: RwSignal::new(None),
            error: RwSignal::new(None),
            query_error: RwSignal::new(None),
            more_busy: RwSignal::new(false),
            votes: RwSignal::new(HashMap::new()),
            search_seq: StoredValue::new(0),
        }
    }

    fn next_search(&self) -> u32 {
        self.search_seq.update_value(|s| *s += 1);
        self.search_seq.get_value()
    }

    fn is_current(&self, seq: u32) -> bool {
        self.search_seq.get_value() == seq
    }

    fn show_error(&self, seq: u32, message: String) {
        if self.is_current(seq) {
            self.busy.set(None);
            self.error.set(Some(message));
        }
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// This browser's anonymous id for its votes (so a second click replaces the first).
fn client_id() -> String {
    let storage = local_storage();
    if let Some(id) = storage
        .as_ref()
        .and_then(|s| s.get_item(CLIENT_ID_KEY).ok().flatten())
    {
        return id;
    }
    let id = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("page-{}", js_sys::Math::random()));
    if let Some(s) = storage {
        let _ = s.set_item(CLIENT_ID_KEY, &id);
    }
    id
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    review::reload_on_switch();
    if review::wanted() {
        return view! { <review::ReviewPage /> }.into_any();
    }
    let ctx = Ctx::new();
    start(ctx);
    view! {
        <header>
            <h1>"text2img"</h1>
            <p class="tagline">"Search the photo collection by describing what you are looking for."</p>
        </header>
        <main>
            <SearchForm ctx=ctx />
            <status::ModelStatus ctx=ctx />
            <results::Results ctx=ctx />
            <Shortcuts />
        </main>
    }
    .into_any()
}

/// Reads `settings.json`, then starts the model worker with the stored precision.
fn start(ctx: Ctx) {
    spawn_local(async move {
        let settings = match Settings::load().await {
            Ok(s) => s,
            Err(e) => {
                ctx.model.set(ModelState::Failed(e));
                return;
            }
        };
        ctx.api.set_value(Api::new(&settings.api_base));
        // A stored name this build does not know means the server's default.
        let variant = local_storage()
            .and_then(|s| s.get_item(VARIANT_KEY).ok().flatten())
            .and_then(|name| Variant::parse(&name).ok());
        let encoder = Encoder::start(&settings.api_base, variant, ctx.model, ctx.info);
        ctx.encoder.set_value(Some(encoder));
    });
}

/// The search box: Enter searches, ↓ moves to the first result, and "/" anywhere but in a text
/// field jumps here.
#[component]
fn SearchForm(ctx: Ctx) -> impl IntoView {
    let (query, set_query) = signal(String::new());
    let input = NodeRef::<leptos::html::Input>::new();
    let slash = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "/"
            && !results::typing_in_field(&ev)
            && let Some(input) = input.get()
        {
            ev.prevent_default();
            let _ = input.focus();
        }
    });
    on_cleanup(move || slash.remove());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        actions::search(ctx, query.get_untracked());
    };
    let input_keys = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "ArrowDown" && results::focus_first_card() {
            ev.prevent_default();
        }
    };
    view! {
        <form role="search" on:submit=on_submit>
            <label for="query" class="visually-hidden">"Describe the image"</label>
            <input
                id="query"
                node_ref=input
                name="q"
                type="search"
                autocomplete="off"
                enterkeyhint="search"
                placeholder="Describe the image, e.g. a red car parked on a street"
                aria-describedby="query-error query-hint"
                aria-invalid=move || ctx.query_error.get().is_some().to_string()
                prop:value=query
                on:input=move |ev| {
                    set_query.set(event_target_value(&ev));
                    ctx.query_error.set(None);
                }
                on:keydown=input_keys
            />
            <button type="submit">"Search"</button>
        </form>
        <syntax::QueryHelp ctx=ctx />
    }
}

/// The keyboard help.
#[component]
fn Shortcuts() -> impl IntoView {
    view! {
        <details class="keys">
            <summary>"Keyboard shortcuts"</summary>
            <dl>
                <dt><kbd>"/"</kbd></dt><dd>"search box"</dd>
                <dt><kbd>"Enter"</kbd></dt><dd>"search (in the search box); open the image (on a result)"</dd>
                <dt><kbd>"↓"</kbd>" "<kbd>"↑"</kbd>" "<kbd>"←"</kbd>" "<kbd>"→"</kbd></dt><dd>"move between results"</dd>
                <dt><kbd>"r"</kbd></dt><dd>"relevant"</dd>
                <dt><kbd>"n"</kbd></dt><dd>"not relevant"</dd>
                <dt><kbd>"f"</kbd></dt><dd>"flag"</dd>
                <dt><kbd>"s"</kbd></dt><dd>"similar images"</dd>
            </dl>
        </details>
    }
}
