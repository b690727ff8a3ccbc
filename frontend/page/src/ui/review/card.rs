//! One queue item: the thumbnail (a link to the original), the query, the caption, the crowd's
//! votes and notes, an optional reviewer's note, and the three verdict buttons.

use leptos::prelude::*;
use wire::{ReviewItem, ReviewVerdict, VoteCounts};

use super::{ReviewCtx, decide};

/// The verdict buttons: verdict, CSS class, text.
const VERDICT_BUTTONS: [(ReviewVerdict, &str, &str); 3] = [
    (ReviewVerdict::Relevant, "relevant", "Relevant"),
    (ReviewVerdict::Irrelevant, "irrelevant", "Not relevant"),
    (ReviewVerdict::Skip, "skip", "Skip"),
];

/// `2 relevant · 1 not relevant · 3 flagged`.
pub fn vote_counts(votes: &VoteCounts) -> String {
    format!(
        "{} relevant · {} not relevant · {} flagged",
        votes.relevant, votes.irrelevant, votes.flag
    )
}

#[component]
pub fn ReviewCard(ctx: ReviewCtx, item: ReviewItem) -> impl IntoView {
    let base = ctx.base.get_value().unwrap_or_default();
    let caption = item
        .caption
        .clone()
        .unwrap_or_else(|| item.image_id.clone());
    let (note, set_note) = signal(String::new());
    let saving = RwSignal::new(false);
    // Unique on the page: a (query, image) pair appears once.
    let note_id = format!(
        "review-note-{}",
        js_sys::encode_uri_component(&format!("{}\u{0}{}", item.query, item.image_id))
    );
    let buttons = VERDICT_BUTTONS
        .iter()
        .map(|&(verdict, class, text)| {
            let item = item.clone();
            view! {
                <button type="button" class=class disabled=move || saving.get()
                    on:click=move |_| decide(ctx, &item, verdict, note.get_untracked(), saving)>
                    {text}
                </button>
            }
        })
        .collect_view();
    let notes = item
        .notes
        .iter()
        .map(|n| view! { <li>{n.clone()}</li> })
        .collect_view();
    let has_notes = !item.notes.is_empty();
    view! {
        <li class="review-item card" data-query=item.query.clone() data-id=item.image_id.clone()>
            <a class="open" href=wire::join_url(&base, &item.url) target="_blank" rel="noopener"
                title="Open the original">
                <img src=wire::join_url(&base, &item.thumbnail_url) alt=caption.clone() loading="lazy" />
            </a>
            <p class="review-query">"Query: " <strong>{item.query.clone()}</strong></p>
            <p class="caption">{caption}</p>
            <p class="counts">{vote_counts(&item.votes)}</p>
            <Show when=move || has_notes>
                <ul class="notes" aria-label="The voters' notes">{notes.clone()}</ul>
            </Show>
            <label for=note_id.clone()>"Reviewer's note (optional)"</label>
            <input id=note_id type="text" maxlength="500"
                on:input=move |ev| set_note.set(event_target_value(&ev)) />
            <div class="actions" role="group" aria-label="Verdict">{buttons}</div>
            <p class="vote" aria-live="polite">{move || saving.get().then_some("Saving…")}</p>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_counts_name_every_verdict() {
        let votes = VoteCounts {
            relevant: 2,
            irrelevant: 0,
            flag: 1,
        };
        assert_eq!(
            vote_counts(&votes),
            "2 relevant · 0 not relevant · 1 flagged"
        );
    }
}
