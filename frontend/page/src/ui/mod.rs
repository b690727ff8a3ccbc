//! The page: a search box, the model's status (progress bar, retry, variant), and the results
//! grid with relevance and flag buttons. The query is encoded by the model worker
//! ([`encoder`]), so only its vector goes to the proxy ([`api`]); [`results`] draws the grid and
//! owns its keyboard.
//!
//! Page state lives in [`Ctx`], a bundle of signals that every action takes by copy.

pub mod api;
pub mod encoder;
mod results;

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use wire::{FeedbackRequest, Hit, Results, Variant, Verdict};

use crate::megabytes;
use api::{Api, Query, Settings};
use encoder::{Encoder, ModelInfo, ModelState};

/// localStorage keys.
const CLIENT_ID_KEY: &str = "text2img.client_id";
const VARIANT_KEY: &str = "text2img.variant";

/// Where a page of results came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A typed query; `vector` is absent when the server encoded it.
    Text {
        text: String,
        vector: Option<Vec<f32>>,
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
    more_busy: RwSignal<bool>,
    votes: RwSignal<HashMap<String, Vote>>,
    /// Bumped by every search, so a slow answer to an old one is dropped.
    search_seq: StoredValue<u32>,
}

impl Ctx {
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

/// Text search: encode (in the worker, or on the server as the fallback), then search.
fn search(ctx: Ctx, text: String) {
    let text = text.trim().to_string();
    let seq = ctx.next_search();
    if text.is_empty() {
        ctx.show_error(
            seq,
            "Type what you are looking for, e.g. “a dog on a beach”.".into(),
        );
        return;
    }
    ctx.error.set(None);
    spawn_local(async move {
        let server_side = |state: &ModelState| matches!(state, ModelState::Server(_));
        // The text goes to the server only in the fallback the status line announces.
        let (query, encode_ms) = if server_side(&ctx.model.get_untracked()) {
            (Query::Text(text.clone()), None)
        } else {
            let Some(encoder) = ctx.encoder.get_value() else {
                let why = match ctx.model.get_untracked() {
                    ModelState::Failed(why) => format!("Cannot search: {why}"),
                    _ => "The page is still starting; search again in a moment.".into(),
                };
                ctx.show_error(seq, why);
                return;
            };
            let waiting = !matches!(ctx.model.get_untracked(), ModelState::Ready { .. });
            ctx.busy.set(Some(if waiting {
                "Waiting for the model to load…".into()
            } else {
                "Encoding the query…".into()
            }));
            match encoder.embed(&text).await {
                Ok((vector, millis)) => (Query::Vector(vector), Some(millis)),
                // The worker gave up starting meanwhile: the server encodes this one.
                Err(_) if server_side(&ctx.model.get_untracked()) => {
                    (Query::Text(text.clone()), None)
                }
                Err(e) => {
                    ctx.show_error(seq, format!("Cannot encode the query: {e}"));
                    return;
                }
            }
        };
        if !ctx.is_current(seq) {
            return;
        }
        ctx.busy.set(Some("Searching…".into()));
        let answer = ctx.api.get_value().search(&query, 0).await;
        if !ctx.is_current(seq) {
            return;
        }
        match answer {
            Ok(results) => {
                let vector = match query {
                    Query::Vector(v) => Some(v),
                    Query::Text(_) => None,
                };
                ctx.votes.set(HashMap::new());
                ctx.busy.set(None);
                ctx.page.set(Some(new_page(
                    Source::Text { text, vector },
                    results,
                    encode_ms,
                    None,
                )));
            }
            Err(e) => ctx.show_error(seq, e),
        }
    });
}

fn new_page(source: Source, results: Results, encode_ms: Option<f64>, back: Option<Page>) -> Page {
    Page {
        source,
        hits: results.results,
        next_offset: results.next_offset,
        encode_ms,
        took_ms: results.took_ms,
        back: back.map(Box::new),
    }
}

/// The next page of the results on screen, appended.
fn load_more(ctx: Ctx) {
    let Some(page) = ctx.page.get_untracked() else {
        return;
    };
    let Some(offset) = page.next_offset else {
        return;
    };
    let seq = ctx.search_seq.get_value();
    ctx.more_busy.set(true);
    spawn_local(async move {
        let api = ctx.api.get_value();
        let answer = match &page.source {
            Source::Text {
                vector: Some(v), ..
            } => api.search(&Query::Vector(v.clone()), offset).await,
            Source::Text { text, vector: None } => {
                api.search(&Query::Text(text.clone()), offset).await
            }
            Source::Similar { id, .. } => api.similar(id, offset).await,
        };
        ctx.more_busy.set(false);
        if !ctx.is_current(seq) {
            return;
        }
        match answer {
            Ok(results) => ctx.page.update(|p| {
                if let Some(p) = p {
                    let have: std::collections::HashSet<String> =
                        p.hits.iter().map(|h| h.id.clone()).collect();
                    p.hits.extend(
                        results
                            .results
                            .into_iter()
                            .filter(|h| !have.contains(&h.id)),
                    );
                    p.next_offset = results.next_offset;
                }
            }),
            Err(e) => ctx.error.set(Some(e)),
        }
    });
}

/// Images like `hit`; "back" returns to the page on screen.
fn show_similar(ctx: Ctx, hit: Hit) {
    let seq = ctx.next_search();
    ctx.error.set(None);
    ctx.busy.set(Some("Finding similar images…".into()));
    spawn_local(async move {
        let answer = ctx.api.get_value().similar(&hit.id, 0).await;
        if !ctx.is_current(seq) {
            return;
        }
        match answer {
            Ok(results) => {
                let back = ctx.page.get_untracked().map(|p| match p.back {
                    // "Similar" on a similar page goes back to the text results, not a chain.
                    Some(text_page) if matches!(p.source, Source::Similar { .. }) => *text_page,
                    _ => p,
                });
                let caption = hit.caption.clone().unwrap_or_else(|| hit.id.clone());
                ctx.busy.set(None);
                ctx.page.set(Some(new_page(
                    Source::Similar {
                        id: hit.id,
                        caption,
                    },
                    results,
                    None,
                    back,
                )));
            }
            Err(e) => ctx.show_error(seq, e),
        }
    });
}

fn go_back(ctx: Ctx) {
    ctx.next_search();
    ctx.busy.set(None);
    ctx.error.set(None);
    ctx.page
        .update(|p| *p = p.take().and_then(|p| p.back.map(|b| *b)));
}

/// A click on a label button: the same label again withdraws it (`none`), another replaces it.
/// A flag's note re-sends the flag with the note.
fn vote(ctx: Ctx, id: String, clicked: Verdict, note: Option<String>) {
    let Some(Page {
        source: Source::Text { text, vector },
        ..
    }) = ctx.page.get_untracked()
    else {
        return;
    };
    let previous = ctx
        .votes
        .with_untracked(|v| v.get(&id).cloned())
        .unwrap_or(Vote {
            label: Verdict::None,
            note: String::new(),
            saving: false,
            error: None,
            seq: 0,
        });
    let label = if note.is_none() && previous.label == clicked {
        Verdict::None
    } else {
        clicked
    };
    let seq = previous.seq + 1;
    let note_text = note.clone().unwrap_or_default();
    ctx.votes.update(|v| {
        v.insert(
            id.clone(),
            Vote {
                label,
                note: note_text.clone(),
                saving: true,
                error: None,
                seq,
            },
        );
    });
    spawn_local(async move {
        let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        let request = FeedbackRequest {
            query: text,
            query_vector: vector,
            image_id: id.clone(),
            label,
            note: note.map(str::to_string),
            client_id: Some(ctx.client_id.get_value()),
        };
        let answer = ctx.api.get_value().feedback(&request).await;
        ctx.votes.update(|v| {
            let Some(vote) = v.get_mut(&id) else {
                return;
            };
            if vote.seq != seq {
                return;
            }
            vote.saving = false;
            if let Err(e) = answer {
                // Not saved: show the vote that is in force and why this one failed.
                vote.label = previous.label;
                vote.note = previous.note;
                vote.error = Some(e);
            }
        });
    });
}

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
        Variant::Q8 => "8-bit",
        Variant::F16 => "16-bit",
        Variant::F32 => "32-bit",
    };
    format!("{kind} ({})", megabytes(bytes))
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx {
        api: StoredValue::new(Api::new("")),
        encoder: StoredValue::new_local(None),
        client_id: StoredValue::new(client_id()),
        model: RwSignal::new(ModelState::Starting),
        info: RwSignal::new(ModelInfo::default()),
        page: RwSignal::new(None),
        busy: RwSignal::new(None),
        error: RwSignal::new(None),
        more_busy: RwSignal::new(false),
        votes: RwSignal::new(HashMap::new()),
        search_seq: StoredValue::new(0),
    };
    let (query, set_query) = signal(String::new());
    let input = NodeRef::<leptos::html::Input>::new();

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

    // "/" anywhere but in a text field jumps to the search box.
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
        search(ctx, query.get_untracked());
    };
    let retry = move |_| match ctx.encoder.get_value() {
        Some(encoder) => {
            ctx.model.set(ModelState::Starting);
            encoder.load();
        }
        // The page itself did not start (a broken settings.json): start it again.
        None => {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
    };
    let change_variant = move |ev: leptos::ev::Event| {
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
    let input_keys = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "ArrowDown" && results::focus_first_card() {
            ev.prevent_default();
        }
    };

    let progress = move || match ctx.model.get() {
        ModelState::Loading { loaded, total } => Some(view! {
            <progress id="model-progress" max=total.to_string() value=loaded.to_string()
                aria-label="Model download"></progress>
        }),
        _ => None,
    };
    let failed = move || matches!(ctx.model.get(), ModelState::Failed(_));
    let server_side = move || matches!(ctx.model.get(), ModelState::Server(_));
    let variants = move || {
        let info = ctx.info.get();
        (info.variants.len() > 1 && !server_side()).then(|| {
            let options = info
                .variants
                .iter()
                .map(|v| {
                    let selected = Some(v.name) == info.variant;
                    view! { <option value=v.name.as_str() selected=selected>{variant_label(v.name, v.bytes)}</option> }
                })
                .collect_view();
            view! {
                <label class="variant">
                    "Model precision "
                    <select id="variant" on:change=change_variant>{options}</select>
                </label>
            }
        })
    };

    view! {
        <header>
            <h1>"text2img"</h1>
            <p class="tagline">"Search the photo collection by describing what you are looking for."</p>
        </header>
        <main>
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
                    prop:value=query
                    on:input=move |ev| set_query.set(event_target_value(&ev))
                    on:keydown=input_keys
                />
                <button type="submit">"Search"</button>
            </form>
            <section class="model" aria-label="Model">
                <p id="status" role="status" aria-live="polite" class:server=server_side class:failed=failed>
                    {move || model_status(&ctx.model.get())}
                </p>
                {progress}
                <Show when=failed>
                    <button id="retry" type="button" on:click=retry>"Retry"</button>
                </Show>
                {variants}
            </section>
            <results::Results ctx=ctx />
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
        </main>
    }
}
