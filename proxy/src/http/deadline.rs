//! http/deadline: has the request body arrived in time?
//!
//! The serving loop gives every request body a deadline, `body_timeout` after its head: a body
//! that trickles in slower than that fails for the handler reading it, and the serving loop then
//! answers [`ApiError::BodyTimeout`] (408) whatever the handler made of the failure. A request
//! without a body gets no timer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::errors::ApiError;

/// Whether a request's body missed its deadline.
#[derive(Debug, Clone, Default)]
pub struct Missed(Arc<AtomicBool>);

impl Missed {
    pub fn missed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The request with its body under a deadline `timeout` from now.
pub fn attach(request: Request<Incoming>, timeout: Duration) -> (Request<Body>, Missed) {
    let missed = Missed::default();
    let request = request.map(|body| {
        if http_body::Body::is_end_stream(&body) {
            Body::new(body)
        } else {
            Body::new(DeadlineBody {
                body,
                deadline: Box::pin(tokio::time::sleep(timeout)),
                missed: missed.clone(),
            })
        }
    });
    (request, missed)
}

/// What the body's reader sees when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("{}", ApiError::BodyTimeout)]
pub struct BodyTimedOut;

struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    missed: Missed,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.missed.0.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
