//! The messages between the page and the model worker, as JSON strings over `postMessage`
//! (serde keeps both sides' types in one place; a 512-value vector is a few kB). The page and the
//! worker are separate crates that may not depend on each other: this module is all they share.

use serde::{Deserialize, Serialize};

use crate::Variant;

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Download (or take from the cache) and build the text model. `None` or a variant the
    /// server does not have means the server's default. A second `Load` replaces the first (a
    /// variant switch, or a retry after a failure).
    Load {
        /// The proxy's origin (`""`: the page's own); see [`crate::join_url`].
        api_base: String,
        variant: Option<Variant>,
    },
    /// Encode `text`. Waits for the model when it is still loading; answered with
    /// [`FromWorker::Embedded`] or [`FromWorker::EmbedFailed`] carrying the same `id`.
    Embed { id: u32, text: String },
}

/// One text-model variant the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInfo {
    pub name: Variant,
    pub bytes: u64,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and listening.
    Started,
    /// The server's model: what can be chosen, and what is being loaded.
    Manifest {
        model_id: String,
        variants: Vec<VariantInfo>,
        variant: Variant,
    },
    /// Bytes of the model's files so far (from the cache or the network) out of `total`.
    Progress {
        loaded: u64,
        total: u64,
    },
    /// The model is ready. `downloaded` bytes came over the network, `cached` from Cache Storage.
    Ready {
        model_id: String,
        variant: Variant,
        dim: usize,
        downloaded: u64,
        cached: u64,
        millis: f64,
    },
    /// Loading failed; `message` says what and where. A new `Load` retries.
    LoadFailed {
        message: String,
    },
    Embedded {
        id: u32,
        vector: Vec<f32>,
        millis: f64,
    },
    EmbedFailed {
        id: u32,
        message: String,
    },
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let to = [
            ToWorker::Load {
                api_base: "https://x.org".into(),
                variant: Some(Variant::F16),
            },
            ToWorker::Embed {
                id: 7,
                text: "a red car".into(),
            },
        ];
        for m in to {
            assert_eq!(serde_json::from_str::<ToWorker>(&m.to_json()).unwrap(), m);
        }
        let from = [
            FromWorker::Progress {
                loaded: 1,
                total: 2,
            },
            FromWorker::Embedded {
                id: 3,
                vector: vec![0.5, -0.25],
                millis: 1.5,
            },
            FromWorker::LoadFailed {
                message: "x".into(),
            },
        ];
        for m in from {
            assert_eq!(serde_json::from_str::<FromWorker>(&m.to_json()).unwrap(), m);
        }
    }

    #[test]
    fn wire_names_are_stable() {
        // The browser tests and the benchmark speak to the worker in these words.
        let m = ToWorker::Embed {
            id: 1,
            text: "t".into(),
        };
        assert_eq!(m.to_json(), r#"{"type":"embed","id":1,"text":"t"}"#);
    }
}
