//! The message loop: the page's [`ToWorker`] messages in, [`FromWorker`] reports and answers
//! out. `Load` starts a load (a newer one wins; a variant switch or a retry); `Embed` is answered
//! by a ready model as soon as it has the query's token rows, waits while the first model loads,
//! and fails with the load's error when there is none.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::spawn_local;
use web_sys::MessageEvent;
use wire::Variant;
use wire::worker::{FromWorker, ToWorker};

use crate::load::{LoadError, load};
use crate::model::Model;
use crate::scope::{global, now_ms, post, warn};

/// The worker's state between messages (the worker has one thread).
#[derive(Debug, Default)]
struct State {
    /// Bumped by every `Load`; a load that finds a newer one started drops its result.
    generation: u32,
    model: Option<Rc<Model>>,
    loading: bool,
    /// The last load's error, for `Embed`s that arrive after it.
    failed: Option<String>,
    /// `Embed`s that arrived before the first model was ready.
    queue: Vec<(u32, String)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The worker's entry point: listen for the page's messages and say so.
pub fn run() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<ToWorker>(&text) {
            Ok(message) => handle(message),
            // Only the page talks to this worker: a bad message is a bug worth seeing.
            Err(e) => warn(&format!(
                "text2img worker: unreadable message {text:?}: {e}"
            )),
        }
    });
    global().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&FromWorker::Started);
}

fn handle(message: ToWorker) {
    match message {
        ToWorker::Load { api_base, variant } => start_load(api_base, variant),
        ToWorker::Embed { id, text } => {
            // A loaded model answers at once, even while another variant loads.
            let waiting = STATE.with_borrow_mut(|s| {
                if s.model.is_none() && s.loading {
                    s.queue.push((id, text.clone()));
                    true
                } else {
                    false
                }
            });
            if !waiting {
                embed(id, &text);
            }
        }
    }
}

fn start_load(api_base: String, variant: Option<Variant>) {
    let generation = STATE.with_borrow_mut(|s| {
        s.generation += 1;
        s.loading = true;
        s.failed = None;
        s.generation
    });
    spawn_local(async move {
        let result = load(&api_base, variant).await;
        if STATE.with_borrow(|s| s.generation) != generation {
            return;
        }
        match result {
            Ok((model, ready)) => loaded(model, &ready),
            Err(e) => failed(&e),
        }
    });
}

/// The new model replaces the old; the queries that waited for it are answered.
fn loaded(model: Model, ready: &FromWorker) {
    let queued = STATE.with_borrow_mut(|s| {
        s.model = Some(Rc::new(model));
        s.loading = false;
        std::mem::take(&mut s.queue)
    });
    post(ready);
    for (id, text) in queued {
        embed(id, &text);
    }
}

/// The page hears why; the queries that waited fail with the same message.
fn failed(error: &LoadError) {
    let message = error.to_string();
    let queued = STATE.with_borrow_mut(|s| {
        s.loading = false;
        s.failed = Some(message.clone());
        std::mem::take(&mut s.queue)
    });
    post(&FromWorker::LoadFailed {
        message: message.clone(),
    });
    for (id, _) in queued {
        post(&FromWorker::EmbedFailed {
            id,
            message: message.clone(),
        });
    }
}

fn embed(id: u32, text: &str) {
    let (model, failed) = STATE.with_borrow(|s| (s.model.clone(), s.failed.clone()));
    let Some(model) = model else {
        let message = failed.unwrap_or_else(|| "the model is not loaded".into());
        post(&FromWorker::EmbedFailed { id, message });
        return;
    };
    let text = text.to_string();
    spawn_local(async move {
        let start = now_ms();
        match model.embed(&text).await {
            Ok(vector) => post(&FromWorker::Embedded {
                id,
                vector,
                millis: now_ms() - start,
            }),
            Err(message) => post(&FromWorker::EmbedFailed { id, message }),
        }
    });
}
