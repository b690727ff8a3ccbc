//! The worker's global scope, as the other modules use it: posting a message to the page, the
//! clock, a warning on the console, and a thrown JS value as text.

use std::fmt;

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::DedicatedWorkerGlobalScope;
use wire::worker::FromWorker;

pub fn global() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Sends `message` to the page.
pub fn post(message: &FromWorker) {
    // Posting a string to the page cannot fail while the worker runs.
    let _ = global().post_message(&JsValue::from_str(&message.to_json()));
}

/// Milliseconds on the worker's clock.
pub fn now_ms() -> f64 {
    global().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// `console.warn`, without pulling in web-sys's Console feature for one call.
pub fn warn(message: &str) {
    if let Ok(console) = Reflect::get(&js_sys::global(), &"console".into())
        && let Ok(warn) = Reflect::get(&console, &"warn".into())
        && let Some(warn) = warn.dyn_ref::<js_sys::Function>()
    {
        let _ = warn.call1(&console, &message.into());
    }
}

/// A thrown JS value: its message, or the value as text.
#[derive(Debug)]
pub struct JsError(String);

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JsValue> for JsError {
    fn from(value: JsValue) -> Self {
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| format!("{value:?}"));
        JsError(text)
    }
}
