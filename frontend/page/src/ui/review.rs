//! The admin review page (`#review`): the proxy's review queue — flagged results and results
//! whose votes disagree — with thumbnails, vote counts and the voters' notes; the reviewer sets
//! each one's verdict (relevant, not relevant, skip) and can take the reviewed judgments away as
//! `queries.tsv`. The admin token is asked for once and kept in this tab's `sessionStorage`
//! only; a refused token is forgotten and asked for again. Plain buttons and fields throughout,
//! so it works by keyboard and on a phone.

mod api;
mod card;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wire::{ReviewItem, ReviewQueue, ReviewRequest, ReviewVerdict};

use super::api::Settings;
use api::{AdminApi, CallError};

/// sessionStorage key of the admin token.
const TOKEN_KEY: &str = "text2img.admin_token";
/// The location hash that opens this page.
const HASH: &str = "#review";

/// Whether the page's address asks for the review page.
pub fn wanted() -> bool {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .is_some_and(|h| h == HASH)
}

/// Reloads the page when its hash moves into or out of `#review` (the search page and this one
/// share nothing, so each starts fresh).
pub fn reload_on_switch() {
    let here = wanted();
    // Lives as long as the page: never removed.
    let _listener = window_event_listener(leptos::ev::hashchange, move |_| {
        if wanted() != here
            && let Some(w) = web_sys::window()
        {
            let _ = w.location().reload();
        }
    });
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// The review page's state; `Copy`, so closures take it freely.
#[derive(Debug, Clone, Copy)]
struct ReviewCtx {
    base: StoredValue<Option<String>>,
    token: RwSignal<Option<String>>,
    queue: RwSignal<Option<ReviewQueue>>,
    offset: RwSignal<usize>,
    status: RwSignal<String>,
    error: RwSignal<Option<String>>,
    export: RwSignal<Option<String>>,
}

impl ReviewCtx {
    fn new() -> Self {
        let token = session_storage().and_then(|s| s.get_item(TOKEN_KEY).ok().flatten());
        ReviewCtx {
            base: StoredValue::new(None),
            token: RwSignal::new(token.filter(|t| !t.is_empty())),
            queue: RwSignal::new(None),
            offset: RwSignal::new(0),
            status: RwSignal::new(String::new()),
            error: RwSignal::new(None),
            export: RwSignal::new(None),
        }
    }

    /// The admin API, once `settings.json` is read and a token is given.
    fn api(&self) -> Option<AdminApi> {
        Some(AdminApi {
            base: self.base.get_value()?,
            token: self.token.get_untracked()?,
        })
    }

    fn set_token(&self, token: Option<String>) {
        if let Some(s) = session_storage() {
            let _ = match &token {
                Some(t) => s.set_item(TOKEN_KEY, t),
                None => s.remove_item(TOKEN_KEY),
            };
        }
        self.queue.set(None);
        self.export.set(None);
        self.token.set(token);
    }

    /// Shows a failed call; a refused token is forgotten, so the page asks for it again.
    fn failed(&self, e: CallError) {
        if let CallError::Refused(_) = e {
            self.set_token(None);
        }
        self.error.set(Some(e.message().to_string()));
    }
}

/// The whole review page.
#[component]
pub fn ReviewPage() -> impl IntoView {
    let ctx = ReviewCtx::new();
    spawn_local(async move {
        match Settings::load().await {
            Ok(settings) => {
                ctx.base.set_value(Some(settings.api_base));
                load(ctx);
            }
            Err(e) => ctx.error.set(Some(e)),
        }
    });
    let signed_in = move || ctx.token.get().is_some();
    view! {
        <header>
            <h1>"text2img review"</h1>
            <p class="tagline">"Settle flagged results and split votes. A verdict here wins over the crowd's in eval."</p>
        </header>
        <main class="review">
            <p id="review-error" role="alert">{move || ctx.error.get()}</p>
            <Show when=signed_in fallback=move || view! { <TokenForm ctx=ctx /> }>
                <Queue ctx=ctx />
                <Export ctx=ctx />
            </Show>
            <p><a href="#">"Back to search"</a></p>
        </main>
    }
}

/// Asks for the admin token (kept in this tab only).
#[component]
fn TokenForm(ctx: ReviewCtx) -> impl IntoView {
    let (token, set_token) = signal(String::new());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let token = token.get_untracked().trim().to_string();
        if token.is_empty() {
            ctx.error.set(Some("Type the admin token first.".into()));
            return;
        }
        ctx.error.set(None);
        ctx.set_token(Some(token));
        load(ctx);
    };
    view! {
        <form id="token-form" on:submit=on_submit>
            <label for="admin-token">"Admin token (TEXT2IMG_ADMIN_TOKEN)"</label>
            <input id="admin-token" type="password" autocomplete="off"
                on:input=move |ev| set_token.set(event_target_value(&ev)) />
            <button type="submit">"Open the queue"</button>
            <p class="hint">"Kept in this browser tab only, until it is closed."</p>
        </form>
    }
}

/// The queue: a status line, the items, paging, and forgetting the token.
#[component]
fn Queue(ctx: ReviewCtx) -> impl IntoView {
    let items = move || {
        ctx.queue
            .with(|q| q.as_ref().map(|q| q.items.clone()).unwrap_or_default())
    };
    let has_next = move || {
        ctx.queue
            .with(|q| q.as_ref().is_some_and(|q| q.next_offset.is_some()))
    };
    let has_previous = move || ctx.offset.get() > 0;
    let page = move |to: usize| {
        ctx.offset.set(to);
        load(ctx);
    };
    view! {
        <div class="review-bar">
            <p id="review-status" role="status" aria-live="polite">{move || ctx.status.get()}</p>
            <button id="reload" type="button" on:click=move |_| load(ctx)>"Reload"</button>
            <button id="forget" type="button" on:click=move |_| ctx.set_token(None)>"Forget the token"</button>
        </div>
        <ul id="queue">
            <For each=items key=|i| (i.query.clone(), i.image_id.clone()) let:item>
                <card::ReviewCard ctx=ctx item=item />
            </For>
        </ul>
        <div class="review-bar">
            <Show when=has_previous>
                <button id="previous" type="button"
                    on:click=move |_| page(ctx.offset.get_untracked().saturating_sub(api::PAGE_SIZE))>
                    "Previous page"
                </button>
            </Show>
            <Show when=has_next>
                <button id="next" type="button"
                    on:click=move |_| page(ctx.offset.get_untracked() + api::PAGE_SIZE)>
                    "Next page"
                </button>
            </Show>
        </div>
    }
}

/// The reviewed judgments as `queries.tsv`: fetched with the token, then offered as a download
/// and shown.
#[component]
fn Export(ctx: ReviewCtx) -> impl IntoView {
    let fetch = move |_| {
        let Some(api) = ctx.api() else { return };
        spawn_local(async move {
            match api.export().await {
                Ok(text) => ctx.export.set(Some(text)),
                Err(e) => ctx.failed(e),
            }
        });
    };
    let href = move || {
        ctx.export.with(|t| {
            t.as_ref().map(|t| {
                format!(
                    "data:text/tab-separated-values;charset=utf-8,{}",
                    js_sys::encode_uri_component(t)
                )
            })
        })
    };
    view! {
        <section class="export" aria-labelledby="export-heading">
            <h2 id="export-heading">"Reviewed judgments"</h2>
            <p>"The images reviewed relevant, per query, as a queries.tsv to commit as a test set."</p>
            <button id="export" type="button" on:click=fetch>"Export queries.tsv"</button>
            <Show when=move || ctx.export.with(Option::is_some)>
                <p><a id="export-link" download="queries.tsv" href=href>"Download queries.tsv"</a></p>
                <pre id="export-text">{move || ctx.export.get()}</pre>
            </Show>
        </section>
    }
}

/// Loads the queue's page at the current offset (back a page when it has emptied).
fn load(ctx: ReviewCtx) {
    let Some(api) = ctx.api() else { return };
    ctx.status.set("Loading the queue…".into());
    spawn_local(async move {
        match api.queue(ctx.offset.get_untracked()).await {
            Ok(queue) if queue.items.is_empty() && queue.offset > 0 => {
                ctx.offset.set(0);
                load(ctx);
            }
            Ok(queue) => {
                ctx.error.set(None);
                ctx.status.set(summary(&queue));
                ctx.queue.set(Some(queue));
            }
            Err(e) => {
                ctx.status.set(String::new());
                ctx.failed(e);
            }
        }
    });
}

fn summary(queue: &ReviewQueue) -> String {
    match queue.total {
        0 => "Nothing to review: no flagged results and no split votes.".into(),
        1 => "1 result to review.".into(),
        n => format!(
            "{n} results to review (showing {}–{}).",
            queue.offset + 1,
            queue.offset + queue.items.len()
        ),
    }
}

/// Sends a verdict; once it is on disk the item leaves the page and the queue is reloaded.
/// `saving` is the card's: set while the call runs, cleared when it fails.
fn decide(
    ctx: ReviewCtx,
    item: &ReviewItem,
    verdict: ReviewVerdict,
    note: String,
    saving: RwSignal<bool>,
) {
    let Some(api) = ctx.api() else { return };
    saving.set(true);
    let note = Some(note.trim().to_string()).filter(|n| !n.is_empty());
    let body = ReviewRequest {
        query: item.query.clone(),
        image_id: item.image_id.clone(),
        verdict,
        note,
    };
    spawn_local(async move {
        match api.verdict(&body).await {
            Ok(_) => {
                ctx.export.set(None);
                load(ctx);
            }
            Err(e) => {
                saving.set(false);
                ctx.failed(e);
            }
        }
    });
}
