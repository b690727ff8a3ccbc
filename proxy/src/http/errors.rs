//! http/errors: what status and JSON body does each failure get?
//!
//! Every handler fails with an [`ApiError`]; the domain errors (store, labels, encoder, a
//! blocking task, a request body) convert into it with `?`. [`ApiError::class`] is the one place
//! where a failure becomes a status and a code; the body is always
//! `{"error":{"code","message"}}`, and server-side failures are logged.
//!
//! The message a client reads is [`ApiError::public_message`]: the error's own words, except for
//! failures whose words may carry internals (a store's or a cluster peer's address, a storage
//! path, the label log's path): those get a short fixed message, and the full error goes to the
//! log once, where the operator reads it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wire::{ErrorBody, ErrorDetail, PartState, Unready};

use crate::compose::ComposeError;
use crate::labels::LabelError;
use crate::model::EncodeError;
use crate::store::StoreError;

use super::MAX_BODY;

/// Why a request failed, by class.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong: a field out of range, a bad filter, a bad label.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The thing asked for is not there (an id, a file, a route).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// An admin route without the right token.
    #[error("send the admin token as `Authorization: Bearer <token>`")]
    Unauthorized,
    /// An admin route that is switched off.
    #[error("the labels export is off: set TEXT2IMG_ADMIN_TOKEN to turn it on")]
    ExportDisabled,
    /// An admin page (`/admin/…`) without the right token: answered with a Basic challenge, so a
    /// browser asks for it.
    #[error("log in with the admin token as the password (any user name)")]
    AdminLogin,
    /// The admin pages are switched off.
    #[error("the admin pages are off: set TEXT2IMG_ADMIN_TOKEN to turn them on")]
    AdminOff,
    /// A body that did not parse, or not JSON at all.
    #[error("{}", json_message(.0))]
    Json(#[from] JsonRejection),
    /// A body over [`MAX_BODY`].
    #[error("request body is over the {MAX_BODY}-byte limit")]
    BodyTooLarge,
    /// A body that did not arrive whole in time (the serving loop's body timeout).
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Too many server-side text encodings at once.
    #[error("too many text searches at once; retry shortly, or encode in the browser")]
    Busy,
    /// This server cannot encode text.
    #[error("this server has no text encoder; send `vector`")]
    NoTextEncoder,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A client over one of its limits (request rate, vote budget): retry after `retry_after`.
    #[error("{message}")]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// The serving loop did not say which client sent the request (a server bug).
    #[error("the server does not know the client's address")]
    NoClientAddress,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Labels(#[from] LabelError),
    #[error(transparent)]
    Encoder(#[from] EncodeError),
    /// Weighted query terms that make no query (`compose.rs`).
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A blocking task panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        code: &'static str,
        what: &'static str,
        source: tokio::task::JoinError,
    },
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A blocking task (`what`) that failed to finish, answered with `code`.
    pub fn task(
        code: &'static str,
        what: &'static str,
    ) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Self::Task { code, what, source }
    }

    /// The one mapping from a failure to its status and code.
    pub fn class(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::ExportDisabled => (StatusCode::FORBIDDEN, "export_disabled"),
            Self::AdminLogin => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::AdminOff => (StatusCode::FORBIDDEN, "admin_disabled"),
            Self::Json(rejection) => json_class(rejection),
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            Self::Busy => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            Self::NoTextEncoder => (StatusCode::SERVICE_UNAVAILABLE, "no_text_encoder"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::RateLimited { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            Self::NoClientAddress => (StatusCode::INTERNAL_SERVER_ERROR, "no_client_address"),
            Self::Store(e) => store_class(e),
            Self::Labels(_) => (StatusCode::SERVICE_UNAVAILABLE, "label_store_failed"),
            Self::Encoder(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoder_failed"),
            Self::Compose(e) => compose_class(e),
            Self::Task { code, .. } => (StatusCode::INTERNAL_SERVER_ERROR, code),
        }
    }
}

/// What a client reads when the store cannot answer now.
pub const STORE_UNAVAILABLE: &str = "the vector store is unavailable; try again shortly";
/// What a client reads when the store failed.
pub const STORE_FAILED: &str = "the vector store failed; the server log has the details";
/// What a client reads when the label log could not be written.
pub const LABELS_FAILED: &str = "the vote could not be stored; the server log has the details";

impl ApiError {
    /// The message a client reads: the error's own, or a fixed one where the error's words may
    /// carry internal addresses, paths or keys (see the module doc).
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(e) | Self::Compose(ComposeError::Store(e)) => store_message(e),
            Self::Labels(_) => LABELS_FAILED.to_string(),
            _ => self.to_string(),
        }
    }

    /// Log a server-side failure once, in full (a fault as an error, a wait as a warning).
    pub fn log(&self, status: StatusCode, code: &str) {
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(code, "{self}");
        } else if status.is_server_error() {
            tracing::warn!(code, "{self}");
        }
    }
}

fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(_) => STORE_UNAVAILABLE.to_string(),
        StoreError::Internal(_) => STORE_FAILED.to_string(),
        // The collection's name, the model's id and dimension; the client's own input.
        StoreError::Mismatch { .. }
        | StoreError::NotOurs { .. }
        | StoreError::NoCollection(_)
        | StoreError::Invalid(_) => e.to_string(),
    }
}

fn store_class(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        StoreError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        StoreError::NoCollection(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ingested"),
        StoreError::Mismatch { .. } | StoreError::NotOurs { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "model_mismatch")
        }
        StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        StoreError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
    }
}

fn compose_class(e: &ComposeError) -> (StatusCode, &'static str) {
    match e {
        ComposeError::Bad(_) => (StatusCode::BAD_REQUEST, "bad_terms"),
        ComposeError::UnknownId { .. } => (StatusCode::NOT_FOUND, "unknown_id"),
        ComposeError::Store(e) => store_class(e),
    }
}

fn json_class(rejection: &JsonRejection) -> (StatusCode, &'static str) {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
        JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        }
        _ => (rejection.status(), "bad_request"),
    }
}

fn json_message(rejection: &JsonRejection) -> String {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge.to_string()
    } else {
        rejection.body_text()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.class();
        self.log(status, code);
        let message = self.public_message();
        let mut response = (status, Json(ErrorBody::new(code, message))).into_response();
        if let Self::AdminLogin = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"text2img admin\", charset=\"UTF-8\""),
            );
        }
        if let Self::RateLimited { retry_after, .. } = self {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// `/readyz` for a store that cannot answer: 503 (not ready, whatever the class), which part is
/// not ready, the code and short message a search would get. Logged once, in full.
pub fn unready(e: StoreError) -> Response {
    let store = match &e {
        StoreError::Unavailable(_) => PartState::Unavailable,
        StoreError::NoCollection(_) => PartState::NotIngested,
        StoreError::Mismatch { .. } | StoreError::NotOurs { .. } => PartState::ModelMismatch,
        StoreError::Invalid(_) | StoreError::Internal(_) => PartState::Failed,
    };
    let e = ApiError::Store(e);
    let (status, code) = e.class();
    e.log(status, code);
    let body = Unready {
        ready: false,
        store,
        // The label log is opened (and held) at start; nothing here can lose it.
        labels: PartState::Ok,
        error: ErrorDetail {
            code: code.to_string(),
            message: e.public_message(),
        },
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `Json` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(ApiError::from)
    }
}

/// An id that is not in the index.
pub fn unknown_image(id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_id",
        format!("no image with id `{id}` in the index"),
    )
}

/// No browser model bundle is installed.
pub fn no_model() -> ApiError {
    ApiError::not_found(
        "no_model",
        "no browser model is installed: run `proxy export-model`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failures whose words may carry internals reach the client as a fixed message.
    #[test]
    fn internals_stay_in_the_log() {
        let detail = "http://10.0.0.7:6455 /var/lib/qdrant/storage key-3f9e";
        let cases = [
            ApiError::Store(StoreError::Unavailable(detail.into())),
            ApiError::Store(StoreError::Internal(detail.into())),
            ApiError::Compose(ComposeError::Store(StoreError::Unavailable(detail.into()))),
            ApiError::Labels(LabelError::Io {
                path: "/var/lib/qdrant/storage/labels.jsonl".into(),
                source: std::io::Error::other("No space left on device"),
            }),
        ];
        for e in cases {
            let message = e.public_message();
            assert!(!message.contains("10.0.0.7"), "{message}");
            assert!(!message.contains("/var/lib"), "{message}");
            assert!(!message.contains("key-3f9e"), "{message}");
            assert!(e.to_string().contains("/var/lib"), "the log keeps it: {e}");
        }
        assert_eq!(
            ApiError::Store(StoreError::Unavailable(detail.into())).public_message(),
            STORE_UNAVAILABLE
        );
    }

    /// The classes whose words are the client's own input or the collection's name pass through.
    #[test]
    fn plain_messages_pass_through() {
        let e = ApiError::Store(StoreError::NoCollection("images".into()));
        assert_eq!(e.public_message(), e.to_string());
        assert!(e.public_message().contains("`images`"));
        let e = ApiError::Store(StoreError::Invalid("vector has 3 values".into()));
        assert_eq!(e.public_message(), "vector has 3 values");
    }
}
