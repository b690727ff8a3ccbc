//! What the page does: search (read the box, encode, then ask the proxy), more results, similar
//! images, back, "more like the ones I marked", and votes (the same label again withdraws it).
//! Each action takes the page's [`Ctx`] and
//! drops answers that a newer action has made stale.

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wire::{Example, FeedbackRequest, Hit, Results, Term, Verdict};

use super::api::{Examples, Query};
use super::encoder::{Encoder, ModelState};
use super::{Ctx, Page, Source, Vote};
use crate::query::{self, Part};

/// Text search: read the box ([`query::parse`]), encode (in the worker, or on the server as the
/// fallback), then search.
pub fn search(ctx: Ctx, text: String) {
    let text = text.trim().to_string();
    let seq = ctx.next_search();
    ctx.query_error.set(None);
    if text.is_empty() {
        ctx.show_error(
            seq,
            "Type what you are looking for, e.g. “a dog on a beach”.".into(),
        );
        return;
    }
    let parsed = match query::parse(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            show_query_error(ctx, seq, e.to_string());
            return;
        }
    };
    ctx.error.set(None);
    spawn_local(async move {
        let encoded = match (parsed.sentence(), &parsed) {
            (Some(sentence), _) => encode(ctx, seq, sentence).await,
            (None, query::Query::Terms(terms)) => encode_terms(ctx, seq, terms).await,
            (None, query::Query::Plain(_)) => None,
        };
        let Some((query, encode_ms)) = encoded else {
            return;
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
                ctx.votes.set(HashMap::new());
                ctx.busy.set(None);
                ctx.page.set(Some(new_page(
                    Source::Text {
                        text,
                        query,
                        like: None,
                    },
                    results,
                    encode_ms,
                    None,
                )));
            }
            Err(e) => ctx.show_error(seq, e),
        }
    });
}

/// What is wrong with the query, beside the box (unless a newer search has started).
fn show_query_error(ctx: Ctx, seq: u32, message: String) {
    if ctx.is_current(seq) {
        ctx.busy.set(None);
        ctx.error.set(None);
        ctx.query_error.set(Some(message));
    }
}

/// The query as the proxy will get it, and the milliseconds the browser took to encode it: the
/// worker's vector, or the text itself in the server-side fallback (which the status line
/// announces). `None` when it cannot be encoded; the page says why.
async fn encode(ctx: Ctx, seq: u32, text: &str) -> Option<(Query, Option<f64>)> {
    if server_side(ctx) {
        return Some((Query::Text(text.to_string()), None));
    }
    let encoder = worker(ctx, seq)?;
    match encoder.embed(text).await {
        Ok((vector, millis)) => Some((Query::Vector(vector), Some(millis))),
        // The worker gave up starting meanwhile: the server encodes this one.
        Err(_) if server_side(ctx) => Some((Query::Text(text.to_string()), None)),
        Err(e) => {
            ctx.show_error(seq, format!("Cannot encode the query: {e}"));
            None
        }
    }
}

/// Weighted terms as the proxy will get them: each text encoded in the worker, one after the
/// other (their milliseconds added up), images by id. The server-side fallback encodes one
/// sentence only, so terms with text need the worker; image terms alone need no model.
async fn encode_terms(ctx: Ctx, seq: u32, terms: &[query::Term]) -> Option<(Query, Option<f64>)> {
    let has_text = terms.iter().any(|t| matches!(t.part, Part::Text(_)));
    let encoder = match (has_text, server_side(ctx)) {
        (false, _) => None,
        (true, true) => {
            show_query_error(ctx, seq, NEEDS_WORKER.into());
            return None;
        }
        (true, false) => Some(worker(ctx, seq)?),
    };
    let mut sent = Vec::with_capacity(terms.len());
    let mut millis = 0.0;
    for term in terms {
        let example = match &term.part {
            Part::Image(id) => Example::Id(id.clone()),
            Part::Text(text) => {
                // `has_text` made sure there is one.
                let Some(encoder) = &encoder else {
                    return None;
                };
                match encoder.embed(text).await {
                    Ok((vector, ms)) => {
                        millis += ms;
                        Example::Vector(vector)
                    }
                    Err(_) if server_side(ctx) => {
                        show_query_error(ctx, seq, NEEDS_WORKER.into());
                        return None;
                    }
                    Err(e) => {
                        ctx.show_error(seq, format!("Cannot encode “{text}”: {e}"));
                        return None;
                    }
                }
            }
        };
        if !ctx.is_current(seq) {
            return None;
        }
        sent.push(Term {
            weight: term.weight,
            example,
        });
    }
    Some((Query::Terms(sent), encoder.map(|_| millis)))
}

/// Why a query with terms cannot be searched in the server-side fallback.
const NEEDS_WORKER: &str = "Terms with words (-, +, weights) need the model in this browser, \
     which cannot run here: search for one sentence, or only for similar:ID terms.";

fn server_side(ctx: Ctx) -> bool {
    matches!(ctx.model.get_untracked(), ModelState::Server(_))
}

/// The model worker, saying on the busy line whether it is still loading; `None` (and the page
/// says why) when there is none.
fn worker(ctx: Ctx, seq: u32) -> Option<Rc<Encoder>> {
    let Some(encoder) = ctx.encoder.get_value() else {
        let why = match ctx.model.get_untracked() {
            ModelState::Failed(why) => format!("Cannot search: {why}"),
            _ => "The page is still starting; search again in a moment.".into(),
        };
        ctx.show_error(seq, why);
        return None;
    };
    let waiting = !matches!(ctx.model.get_untracked(), ModelState::Ready { .. });
    ctx.busy.set(Some(if waiting {
        "Waiting for the model to load…".into()
    } else {
        "Encoding the query…".into()
    }));
    Some(encoder)
}

fn new_page(source: Source, results: Results, encode_ms: Option<f64>, back: Option<Page>) -> Page {
    Page {
        source,
        hits: results.results,
        next_offset: results.next_offset,
        vectors: results.vectors,
        encode_ms,
        took_ms: results.took_ms,
        back: back.map(Box::new),
    }
}

/// The next page of the results on screen, appended.
pub fn load_more(ctx: Ctx) {
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
            Source::Text { query, like, .. } => {
                let like = like.clone().unwrap_or_default();
                api.search_like(query, &like, offset).await
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

/// This query's votes as examples: relevant ones positive, not relevant and flagged negative.
pub fn marked(votes: &HashMap<String, Vote>) -> Examples {
    let mut like = Examples::default();
    for (id, vote) in votes {
        match vote.label {
            Verdict::Relevant => like.positive.push(id.clone()),
            Verdict::Irrelevant | Verdict::Flag => like.negative.push(id.clone()),
            Verdict::None => {}
        }
    }
    like.positive.sort();
    like.negative.sort();
    like
}

/// "More like the ones I marked": the text query searched again with this query's votes as
/// examples (at least one relevant). The votes stay, so marking more and pressing again refines
/// further; the images already marked are left out of the new results.
pub fn more_like_marked(ctx: Ctx) {
    let Some(Page {
        source: Source::Text { text, query, .. },
        ..
    }) = ctx.page.get_untracked()
    else {
        return;
    };
    let like = ctx.votes.with_untracked(marked);
    if like.positive.is_empty() {
        return;
    }
    let seq = ctx.next_search();
    ctx.error.set(None);
    ctx.busy
        .set(Some("Finding more like the ones you marked…".into()));
    spawn_local(async move {
        let answer = ctx.api.get_value().search_like(&query, &like, 0).await;
        if !ctx.is_current(seq) {
            return;
        }
        match answer {
            Ok(results) => {
                ctx.busy.set(None);
                let like = Some(like);
                let source = Source::Text { text, query, like };
                ctx.page.set(Some(new_page(source, results, None, None)));
            }
            Err(e) => ctx.show_error(seq, e),
        }
    });
}

/// Images like `hit`; "back" returns to the page on screen.
pub fn show_similar(ctx: Ctx, hit: Hit) {
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

pub fn go_back(ctx: Ctx) {
    ctx.next_search();
    ctx.busy.set(None);
    ctx.error.set(None);
    ctx.page
        .update(|p| *p = p.take().and_then(|p| p.back.map(|b| *b)));
}

/// A click on a label button: the same label again withdraws it (`none`), another replaces it.
/// A flag's note re-sends the flag with the note.
pub fn vote(ctx: Ctx, id: String, clicked: Verdict, note: Option<String>) {
    let Some(Page {
        source: Source::Text { text, query, .. },
        ..
    }) = ctx.page.get_untracked()
    else {
        return;
    };
    // Only a sentence's vector: a composed query's vector is the proxy's sum.
    let vector = match query {
        Query::Vector(v) => Some(v),
        Query::Text(_) | Query::Terms(_) => None,
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
        settle_vote(ctx, &id, seq, previous, answer);
    });
}

/// The proxy's answer to vote `seq` on `id`, unless a newer click has replaced it. Not saved:
/// the vote in force (`previous`) comes back, with why this one failed.
fn settle_vote(ctx: Ctx, id: &str, seq: u32, previous: Vote, answer: Result<(), String>) {
    ctx.votes.update(|v| {
        let Some(vote) = v.get_mut(id) else {
            return;
        };
        if vote.seq != seq {
            return;
        }
        vote.saving = false;
        if let Err(e) = answer {
            vote.label = previous.label;
            vote.note = previous.note;
            vote.error = Some(e);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(label: Verdict) -> Vote {
        Vote {
            label,
            note: String::new(),
            saving: false,
            error: None,
            seq: 1,
        }
    }

    #[test]
    fn marks_become_sorted_examples() {
        let votes = HashMap::from([
            ("z".to_string(), vote(Verdict::Relevant)),
            ("a".to_string(), vote(Verdict::Relevant)),
            ("m".to_string(), vote(Verdict::Irrelevant)),
            ("f".to_string(), vote(Verdict::Flag)),
            ("w".to_string(), vote(Verdict::None)),
        ]);
        let like = marked(&votes);
        assert_eq!(like.positive, ["a", "z"]);
        assert_eq!(like.negative, ["f", "m"]);
        assert_eq!(marked(&HashMap::new()), Examples::default());
    }
}
