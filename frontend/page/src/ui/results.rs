//! The results: summary line, loading / empty / error states, the grid of cards with their label
//! buttons, "more", and "back" from a similar-images page. The grid's keyboard: arrows move
//! between cards, letters label the focused one (the same buttons a click presses).

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, KeyboardEvent};

use wire::{CutoffState, Hit, Vectors, Verdict};

use super::actions::{go_back, load_more, marked, more_like_marked, show_similar, vote};
use super::api::Query;
use super::{Ctx, Source, Vote};

/// The card's label buttons: label, CSS class, text, shortcut key.
const LABEL_BUTTONS: [(Verdict, &str, &str, &str); 3] = [
    (Verdict::Relevant, "relevant", "Relevant", "r"),
    (Verdict::Irrelevant, "irrelevant", "Not relevant", "n"),
    (Verdict::Flag, "flag", "Flag", "f"),
];

/// True when the key went to a text field (its letters are typing, not shortcuts).
pub fn typing_in_field(ev: &KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

fn cards() -> Vec<HtmlElement> {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return Vec::new();
    };
    let Ok(list) = doc.query_selector_all("#grid > li.card") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i)?.dyn_into::<HtmlElement>().ok())
        .collect()
}

/// Focuses the first result; false when there is none.
pub fn focus_first_card() -> bool {
    cards().first().is_some_and(|c| c.focus().is_ok())
}

/// Cards per row, as laid out now (the grid's columns follow the screen width).
fn columns(cards: &[HtmlElement]) -> usize {
    let top = cards.first().map(|c| c.offset_top());
    cards
        .iter()
        .take_while(|c| Some(c.offset_top()) == top)
        .count()
        .max(1)
}

/// Arrow keys and shortcuts on the grid.
fn grid_keys(ev: KeyboardEvent) {
    if typing_in_field(&ev) || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
        return;
    }
    let Some(card) = ev
        .target()
        .and_then(|t| t.dyn_into::<Element>().ok())
        .and_then(|e| e.closest("li.card").ok().flatten())
    else {
        return;
    };
    let all = cards();
    let Some(index) = all.iter().position(|c| **c == card) else {
        return;
    };
    let key = ev.key();
    let on_card = ev
        .target()
        .and_then(|t| t.dyn_into::<Element>().ok())
        .is_some_and(|e| e == card);
    let target = match key.as_str() {
        "ArrowRight" => Some(index + 1),
        "ArrowLeft" => index.checked_sub(1),
        "ArrowDown" => Some(index + columns(&all)),
        "ArrowUp" => index.checked_sub(columns(&all)),
        "Home" => Some(0),
        "End" => Some(all.len().saturating_sub(1)),
        _ => None,
    };
    if let Some(next) = target {
        ev.prevent_default();
        if let Some(next) = all.get(next) {
            let _ = next.focus();
        }
        return;
    }
    let button = match key.as_str() {
        "Enter" if on_card => ".open",
        "o" => ".open",
        "s" => ".similar",
        k => match LABEL_BUTTONS.iter().find(|b| b.3 == k) {
            Some(b) => b.1,
            None => return,
        },
    };
    let selector = if button.starts_with('.') {
        button.to_string()
    } else {
        format!("button.{button}")
    };
    if let Ok(Some(el)) = card.query_selector(&selector)
        && let Ok(el) = el.dyn_into::<HtmlElement>()
    {
        ev.prevent_default();
        el.click();
    }
}

fn summary(page: &super::Page) -> String {
    let n = page.hits.len();
    let more = if page.next_offset.is_some() { "+" } else { "" };
    let results = if n == 1 { "result" } else { "results" };
    match &page.source {
        Source::Text {
            text,
            like: Some(like),
            ..
        } => format!(
            "{n}{more} {results} for “{text}”, more like the {} you marked relevant{} · search {:.0} ms",
            like.positive.len(),
            match like.negative.len() {
                0 => String::new(),
                m => format!(" and unlike the {m} you did not"),
            },
            page.took_ms
        ),
        Source::Text { text, query, .. } => {
            let how = match (query, page.encode_ms) {
                (Query::Text(_), _) => "query encoded by the server".to_string(),
                (Query::Terms(t), Some(ms)) => {
                    format!("{} encoded in this browser in {ms:.0} ms", terms(t.len()))
                }
                (Query::Terms(t), None) => terms(t.len()),
                (Query::Vector(_), Some(ms)) => {
                    format!("query encoded in this browser in {ms:.0} ms")
                }
                (Query::Vector(_), None) => "query encoded in this browser".to_string(),
            };
            format!(
                "{n}{more} {results} for “{text}” · {how} · search {:.0} ms",
                page.took_ms
            )
        }
        Source::Similar { caption, .. } => format!("{n}{more} images similar to “{caption}”"),
    }
}

/// "1 term", "3 terms".
fn terms(n: usize) -> String {
    if n == 1 {
        "1 term".into()
    } else {
        format!("{n} terms")
    }
}

fn vote_status(vote: &Vote) -> String {
    if vote.saving {
        return "Saving…".into();
    }
    if let Some(e) = &vote.error {
        return format!("Not saved: {e}");
    }
    match vote.label {
        Verdict::Relevant => "Saved: relevant".into(),
        Verdict::Irrelevant => "Saved: not relevant".into(),
        Verdict::Flag if vote.note.is_empty() => "Saved: flagged".into(),
        Verdict::Flag => "Saved: flagged, with note".into(),
        Verdict::None => "Vote withdrawn".into(),
    }
}

/// Each hit, and whether the "Weaker matches" divider goes before it (the first weak hit).
fn with_divider(hits: &[Hit]) -> Vec<(Hit, bool)> {
    let first_weak = hits.iter().position(|h| h.weak);
    hits.iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), Some(i) == first_weak))
        .collect()
}

/// The line under the summary while the "no good match" line is off; `None` when it is on.
pub fn cutoff_note(state: &CutoffState) -> Option<String> {
    let CutoffState::Off(off) = state else {
        return None;
    };
    let missing = off.needed.saturating_sub(off.labels);
    Some(if missing > 0 {
        let labels = if missing == 1 { "label" } else { "labels" };
        format!("No “no good match” line yet: needs {missing} more {labels}.")
    } else {
        format!("No “no good match” line yet: {}.", off.reason)
    })
}

#[component]
pub fn Results(ctx: Ctx) -> impl IntoView {
    let hits = move || {
        ctx.page.with(|p| {
            p.as_ref()
                .map(|p| with_divider(&p.hits))
                .unwrap_or_default()
        })
    };
    // The line's state, asked again with each page of text results (votes may have moved it).
    let note = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let text = ctx
            .page
            .with(|p| matches!(p, Some(p) if matches!(p.source, Source::Text { .. })));
        if !text {
            note.set(None);
            return;
        }
        let api = ctx.api.get_value();
        spawn_local(async move {
            // Unknown (an older server, a failed call): say nothing.
            note.set(api.cutoff().await.ok().as_ref().and_then(cutoff_note));
        });
    });
    let labels_on = Memo::new(move |_| {
        ctx.page
            .with(|p| matches!(p, Some(p) if matches!(p.source, Source::Text { .. })))
    });
    let has_back = move || {
        ctx.page
            .with(|p| p.as_ref().is_some_and(|p| p.back.is_some()))
    };
    let has_more = move || {
        ctx.page
            .with(|p| p.as_ref().is_some_and(|p| p.next_offset.is_some()))
    };
    let empty = move || {
        ctx.page
            .with(|p| p.as_ref().is_some_and(|p| p.hits.is_empty()))
    };

    view! {
        <section class="results" aria-label="Results" aria-busy=move || ctx.busy.get().is_some().to_string()>
            <p id="busy" role="status" aria-live="polite">{move || ctx.busy.get()}</p>
            <Show when=move || ctx.error.get().is_some()>
                <p id="error" role="alert">{move || ctx.error.get()}</p>
            </Show>
            <Show when=has_back>
                <button id="back" type="button" on:click=move |_| go_back(ctx)>"← Back to the results"</button>
            </Show>
            <p id="summary">{move || ctx.page.with(|p| p.as_ref().map(summary))}</p>
            <Show when=move || labels_on.get()>
                <MoreLike ctx=ctx />
            </Show>
            <Show when=move || note.with(Option::is_some)>
                <p id="cutoff-note" role="note">{move || note.get()}</p>
            </Show>
            <Show when=empty>
                <p id="empty">"No images found. If the collection is new, ingest it first (see README)."</p>
            </Show>
            <ul id="grid" on:keydown=grid_keys>
                // A card shows its hit as first drawn: a new score or mark is a new card.
                <For each=hits key=|(h, divider)| (h.id.clone(), h.score.to_bits(), h.weak, *divider)
                    children=move |(hit, divider)| view! {
                        <Show when=move || divider>
                            <li class="weak-divider"><h2 id="weak-divider">"Weaker matches"</h2></li>
                        </Show>
                        <Card ctx=ctx hit=hit labels_on=labels_on />
                    } />
            </ul>
            <Show when=has_more>
                <button id="more" type="button" disabled=move || ctx.more_busy.get()
                    on:click=move |_| load_more(ctx)>
                    {move || if ctx.more_busy.get() { "Loading…" } else { "More results" }}
                </button>
            </Show>
        </section>
    }
}

/// "More like the ones I marked": searches again with this query's votes (at least one
/// relevant). Unavailable until then, but still focusable (`aria-disabled`), so the keyboard
/// reaches it and its hint says what it needs.
#[component]
fn MoreLike(ctx: Ctx) -> impl IntoView {
    let like = Memo::new(move |_| ctx.votes.with(marked));
    let ready = move || like.with(|l| !l.positive.is_empty());
    let hint = move || {
        like.with(|l| match (l.positive.len(), l.negative.len()) {
            (0, _) => "Mark at least one result Relevant to find more like it.".to_string(),
            (p, n) => format!(
                "Uses the {p} you marked relevant and the {n} you marked not relevant or flagged."
            ),
        })
    };
    view! {
        <div class="refine">
            <button id="more-like" type="button" aria-disabled=move || (!ready()).to_string()
                aria-describedby="more-like-hint"
                on:click=move |_| if ready() { more_like_marked(ctx) }>
                "More like the ones I marked"
            </button>
            <span id="more-like-hint">{hint}</span>
        </div>
    }
}

/// What a result's score is, for its tooltip.
fn score_title(vectors: Vectors) -> &'static str {
    match vectors {
        Vectors::Image => "Cosine similarity of the image to the query",
        Vectors::Caption => "Cosine similarity of the caption to the query",
        Vectors::Fused => "Fused score of the image and caption rankings",
    }
}

#[component]
fn Card(ctx: Ctx, hit: Hit, labels_on: Memo<bool>) -> impl IntoView {
    let id = hit.id.clone();
    let current = {
        let id = id.clone();
        Memo::new(move |_| ctx.votes.with(|v| v.get(&id).cloned()))
    };
    let caption = hit.caption.clone().unwrap_or_else(|| hit.id.clone());
    let score_title = ctx
        .page
        .with_untracked(|p| score_title(p.as_ref().map_or(Vectors::Image, |p| p.vectors)));
    let api = ctx.api.get_value();
    let (note, set_note) = signal(String::new());

    let buttons = LABEL_BUTTONS
        .iter()
        .map(|&(label, class, text, key)| {
            let id = id.clone();
            let pressed = move || current.with(|v| v.as_ref().is_some_and(|v| v.label == label));
            view! {
                <button type="button" class=class aria-pressed=move || pressed().to_string()
                    aria-keyshortcuts=key title=format!("{text} ({key})")
                    on:click=move |_| vote(ctx, id.clone(), label, None)>
                    {text}
                </button>
            }
        })
        .collect_view();
    let flagged = move || {
        current.with(|v| {
            v.as_ref()
                .is_some_and(|v| v.label == Verdict::Flag && !v.saving)
        })
    };
    let send_note = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            vote(ctx, id.clone(), Verdict::Flag, Some(note.get_untracked()));
        }
    };
    let similar_hit = hit.clone();
    let note_id = format!("note-{}", hit.id);

    view! {
        <li class=if hit.weak { "card weak" } else { "card" } tabindex="0" data-id=hit.id.clone() aria-label=caption.clone()>
            <a class="open" href=api.url(&hit.url) target="_blank" rel="noopener"
                title="Open the original (o)">
                <img src=api.url(&hit.thumbnail_url) alt=caption.clone() loading="lazy" />
            </a>
            <div class="meta">
                <span class="caption">{caption.clone()}</span>
                <span class="score" title=score_title>{format!("{:.3}", hit.score)}</span>
            </div>
            <div class="actions" role="group" aria-label="Label this result">
                <Show when=move || labels_on.get()>{buttons.clone()}</Show>
                <button type="button" class="similar" title="Similar images (s)" aria-keyshortcuts="s"
                    on:click=move |_| show_similar(ctx, similar_hit.clone())>"Similar"</button>
            </div>
            <p class="vote" aria-live="polite">{move || current.with(|v| v.as_ref().map(vote_status))}</p>
            <Show when=flagged>
                <form class="note" on:submit=send_note.clone()>
                    <label class="visually-hidden" for=note_id.clone()>"Why flag it?"</label>
                    <input id=note_id.clone() type="text" maxlength="500"
                        placeholder="Why? (optional)"
                        on:input=move |ev| set_note.set(event_target_value(&ev)) />
                    <button type="submit">"Save note"</button>
                </form>
            </Show>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use wire::{CutoffOff, CutoffOn, CutoffRule};

    use super::*;

    fn hit(id: &str, weak: bool) -> Hit {
        Hit {
            id: id.into(),
            score: 0.5,
            url: String::new(),
            thumbnail_url: String::new(),
            caption: None,
            payload: Default::default(),
            weak,
        }
    }

    #[test]
    fn the_divider_goes_before_the_first_weak_hit_only() {
        let marks =
            |hits: &[Hit]| -> Vec<bool> { with_divider(hits).iter().map(|h| h.1).collect() };
        let (a, b, c) = (hit("a", false), hit("b", true), hit("c", true));
        assert_eq!(
            marks(&[a.clone(), b.clone(), c.clone()]),
            [false, true, false]
        );
        assert_eq!(marks(&[b.clone(), c]), [true, false]);
        assert_eq!(marks(&[a.clone(), a]), [false, false]);
        assert!(marks(&[]).is_empty());
    }

    #[test]
    fn the_note_counts_the_labels_still_needed() {
        let off = |labels, reason: &str| {
            CutoffState::Off(CutoffOff {
                labels,
                queries: 1,
                needed: 30,
                reason: reason.into(),
            })
        };
        assert_eq!(
            cutoff_note(&off(12, "x")).as_deref(),
            Some("No “no good match” line yet: needs 18 more labels.")
        );
        assert_eq!(
            cutoff_note(&off(29, "x")).as_deref(),
            Some("No “no good match” line yet: needs 1 more label.")
        );
        assert_eq!(
            cutoff_note(&off(40, "needs 2 more judged queries (has 3 of 5)")).as_deref(),
            Some("No “no good match” line yet: needs 2 more judged queries (has 3 of 5).")
        );
        let on = CutoffState::On(CutoffOn {
            rule: CutoffRule::Flat,
            value: 0.2,
            precision: 1.0,
            recall: 1.0,
            f1: 1.0,
            labels: 40,
            queries: 6,
            compared: vec![],
        });
        assert_eq!(cutoff_note(&on), None);
    }
}
