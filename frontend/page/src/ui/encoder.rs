//! The page's side of the model worker: starts it, tells the page how loading goes, and turns
//! `embed(text)` into a message and its answer. When the browser cannot run the worker (no
//! `Worker`, or the worker's wasm never starts), the page falls back to the proxy's server-side
//! encoding and says so.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use wire::Variant;
use wire::worker::{FromWorker, ToWorker, VariantInfo};

/// The worker's loader, written by trunk beside `index.html` (`data-loader-shim`).
const WORKER_URL: &str = "./worker_loader.js";
/// How long the worker may take to start (fetch and compile its wasm) before the page falls
/// back to server-side encoding. It switches back if the worker starts after all.
const START_TIMEOUT_MS: i32 = 30_000;

/// Where the model stands, for the status line and progress bar.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Starting,
    Loading {
        loaded: u64,
        total: u64,
    },
    Ready {
        variant: Variant,
        downloaded: u64,
        cached: u64,
        millis: f64,
    },
    Failed(String),
    /// The browser cannot run the model; queries are encoded by the server.
    Server(String),
}

/// What the worker reported about the server's model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    pub model_id: String,
    pub variants: Vec<VariantInfo>,
    /// `None` until the worker has read the server's manifest.
    pub variant: Option<Variant>,
}

type Reply = oneshot::Sender<Result<(Vec<f32>, f64), String>>;

/// A started worker and its open requests.
#[derive(Debug)]
pub struct Encoder {
    worker: Option<Worker>,
    api_base: String,
    pending: RefCell<HashMap<u32, Reply>>,
    next_id: Cell<u32>,
    started: Cell<bool>,
    variant: Cell<Option<Variant>>,
    /// Messages for a worker that has not said `Started` yet: before that it has no listener,
    /// and a message would be lost.
    queued: RefCell<Vec<ToWorker>>,
}

impl Encoder {
    /// Starts the worker and asks it to load `variant` (or the server's default). `state` and
    /// `info` follow its reports.
    pub fn start(
        api_base: &str,
        variant: Option<Variant>,
        state: RwSignal<ModelState>,
        info: RwSignal<ModelInfo>,
    ) -> Rc<Encoder> {
        let worker = match Worker::new(WORKER_URL) {
            Ok(w) => Some(w),
            Err(e) => {
                let why = js_message(&e);
                state.set(ModelState::Server(format!(
                    "this browser cannot start the model worker ({why})"
                )));
                None
            }
        };
        let encoder = Rc::new(Encoder {
            worker,
            api_base: api_base.to_string(),
            pending: RefCell::default(),
            next_id: Cell::new(0),
            started: Cell::new(false),
            variant: Cell::new(variant),
            queued: RefCell::default(),
        });
        if let Some(worker) = &encoder.worker {
            listen(&encoder, worker, state, info);
            watch_errors(&encoder, worker, state);
            watch_start(&encoder, state);
        }
        encoder
    }

    /// One report or answer from the worker.
    fn receive(&self, message: FromWorker, state: RwSignal<ModelState>, info: RwSignal<ModelInfo>) {
        match message {
            FromWorker::Started => {
                self.started.set(true);
                state.set(ModelState::Starting);
                self.load();
                for message in self.queued.take() {
                    self.send(&message);
                }
            }
            FromWorker::Manifest {
                model_id,
                variants,
                variant,
            } => info.set(ModelInfo {
                model_id,
                variants,
                variant: Some(variant),
            }),
            FromWorker::Progress { loaded, total } => {
                state.set(ModelState::Loading { loaded, total })
            }
            FromWorker::Ready {
                variant,
                downloaded,
                cached,
                millis,
                ..
            } => state.set(ModelState::Ready {
                variant,
                downloaded,
                cached,
                millis,
            }),
            FromWorker::LoadFailed { message } => state.set(ModelState::Failed(message)),
            FromWorker::Embedded { id, vector, millis } => self.answer(id, Ok((vector, millis))),
            FromWorker::EmbedFailed { id, message } => self.answer(id, Err(message)),
        }
    }

    fn answer(&self, id: u32, result: Result<(Vec<f32>, f64), String>) {
        if let Some(reply) = self.pending.borrow_mut().remove(&id) {
            let _ = reply.send(result);
        }
    }

    /// True while queries go to the worker (false: server-side fallback).
    pub fn in_browser(&self) -> bool {
        self.worker.is_some() && self.started.get()
    }

    /// (Re)loads the model: a retry after a failure, or another variant.
    pub fn load(&self) {
        let variant = self.variant.get();
        self.send(&ToWorker::Load {
            api_base: self.api_base.clone(),
            variant,
        });
    }

    pub fn set_variant(&self, variant: Variant) {
        self.variant.set(Some(variant));
        self.load();
    }

    /// The vector of `text` and the milliseconds the worker took; waits for a loading model.
    pub async fn embed(&self, text: &str) -> Result<(Vec<f32>, f64), String> {
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        let (reply, answer) = oneshot::channel();
        self.pending.borrow_mut().insert(id, reply);
        self.send(&ToWorker::Embed {
            id,
            text: text.to_string(),
        });
        answer
            .await
            .unwrap_or_else(|_| Err("the model worker stopped".into()))
    }

    fn send(&self, message: &ToWorker) {
        let Some(worker) = &self.worker else {
            return;
        };
        if self.started.get() {
            let _ = worker.post_message(&message.to_json().into());
        } else {
            self.queued.borrow_mut().push(message.clone());
        }
    }

    /// Server-side encoding from now on (unless the worker starts after all): queries waiting for
    /// the worker are answered with an error, and the page retries them on the server.
    fn give_up(&self, state: RwSignal<ModelState>, why: String) {
        self.queued.borrow_mut().clear();
        for (_, reply) in self.pending.borrow_mut().drain() {
            let _ = reply.send(Err(why.clone()));
        }
        state.set(ModelState::Server(why));
    }
}

/// The worker's messages go to [`Encoder::receive`].
fn listen(
    encoder: &Rc<Encoder>,
    worker: &Worker,
    state: RwSignal<ModelState>,
    info: RwSignal<ModelInfo>,
) {
    let weak = Rc::downgrade(encoder);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        let Ok(message) = serde_json::from_str::<FromWorker>(&text) else {
            return;
        };
        if let Some(encoder) = weak.upgrade() {
            encoder.receive(message, state, info);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
}

/// A worker script that fails to load or throws before it listens: fall back. One that fails
/// later: the model failed.
fn watch_errors(encoder: &Rc<Encoder>, worker: &Worker, state: RwSignal<ModelState>) {
    let weak = Rc::downgrade(encoder);
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
        let message = event.message();
        let Some(encoder) = weak.upgrade() else {
            return;
        };
        if encoder.started.get() {
            state.set(ModelState::Failed(format!(
                "the model worker failed: {message}"
            )));
        } else {
            encoder.give_up(
                state,
                format!("the model worker could not start ({message})"),
            );
        }
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
}

/// A wasm that never compiles (an old browser) rejects a promise inside the worker, which fires
/// no error event here: a deadline catches it.
fn watch_start(encoder: &Rc<Encoder>, state: RwSignal<ModelState>) {
    let weak = Rc::downgrade(encoder);
    let deadline = Closure::once_into_js(move || {
        if let Some(encoder) = weak.upgrade()
            && !encoder.started.get()
        {
            encoder.give_up(state, "the model worker did not start within 30 s".into());
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            deadline.unchecked_ref(),
            START_TIMEOUT_MS,
        );
    }
}

/// The message of a thrown JS value.
pub fn js_message(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
