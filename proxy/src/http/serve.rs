//! http/serve: how are connections accepted, served and closed?
//!
//! [`serve`] is the one serving loop: `proxy serve`, the test servers and the search benchmark
//! all run the router through it. It speaks HTTP/1.1 (hyper), and enforces [`Limits`]:
//!
//! - at most `max_connections` at once. The loop does not accept another until one closes, so
//!   further connections wait in the kernel's listen backlog (and past that, their SYNs are
//!   dropped and retried by the client): nothing is spent on a connection that will not be
//!   served, and a burst is served in turn rather than refused;
//! - at most `max_connections_per_client` from one client: one more is closed as soon as it is
//!   accepted, so a single address cannot hold every place and lock the others out;
//! - the head, idle and no-progress deadlines of [`super::watchdog`], and the body deadline of
//!   [`super::deadline`];
//! - every request carries `ConnectInfo<SocketAddr>` (the peer), so [`super::client::ClientIp`]
//!   works.
//!
//! On `shutdown` the loop stops accepting, each connection finishes the request it is answering
//! (idle ones close at once), and `serve` returns when all have closed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use super::deadline;
use super::errors::ApiError;
use super::limits::{ClientSlot, Limits, OpenPerClient};
use super::watchdog::{Answer, Watchdog, Watched};

/// Serve `router` on `listener` under `limits` until `shutdown` completes, then until every
/// connection has finished.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(OpenPerClient::default());
    // `stop` tells connections to finish; each holds `open` until it closes.
    let (stop, stopping) = watch::channel(());
    let (open, closed) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(client_slot) = per_client.admit(peer.ip(), &limits) else {
            tracing::debug!("connection from {peer}: over the per-client cap, closed");
            continue;
        };
        let connection = Connection {
            router: router.clone(),
            peer,
            limits: limits.clone(),
            _slot: slot,
            _client_slot: client_slot,
            _open: closed.clone(),
        };
        tokio::spawn(connection.run(stream, stopping.clone()));
    }
    drop(listener);
    drop(stop);
    drop(closed);
    open.closed().await;
    Ok(())
}

/// An accept that failed: a connection reset before it was accepted is nothing; running out of
/// file descriptors (or another error) is logged and waited out, rather than spun on.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::warn!("accepting a connection failed: {error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One accepted connection.
struct Connection {
    router: Router,
    peer: SocketAddr,
    limits: Limits,
    /// Its place among `max_connections`, given back when it closes.
    _slot: OwnedSemaphorePermit,
    /// Its place among its client's `max_connections_per_client`.
    _client_slot: ClientSlot,
    /// Held while open: `serve` waits for every one to be dropped.
    _open: watch::Receiver<()>,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stopping: watch::Receiver<()>) {
        // Answers are written whole (head and body in one write where they fit): no need to
        // wait for more to send.
        let _ = stream.set_nodelay(true);
        let watchdog = Watchdog::new();
        let io = TokioIo::new(Watched::new(stream, watchdog.clone()));
        let (router, peer, body_timeout) =
            (self.router.clone(), self.peer, self.limits.body_timeout);
        let requests_watchdog = watchdog.clone();
        let service = hyper::service::service_fn(move |request| {
            answer(
                request,
                router.clone(),
                peer,
                body_timeout,
                requests_watchdog.clone(),
            )
        });
        let mut builder = http1::Builder::new();
        // The watchdog keeps the head deadline (hyper's own needs a timer, and would also
        // close idle connections after the head timeout).
        builder.keep_alive(true).header_read_timeout(None);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let mut asked_to_stop = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                    break;
                }
                () = watchdog.expired(&self.limits) => {
                    tracing::debug!("connection from {peer}: past its deadline, closed");
                    break;
                }
                _ = stopping.changed(), if !asked_to_stop => {
                    asked_to_stop = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// One request through the router: the peer address on it, its body under the deadline, and a
/// 408 when the body missed that deadline.
async fn answer(
    request: Request<Incoming>,
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
    watchdog: Arc<Watchdog>,
) -> Result<Response<Answer>, Infallible> {
    let in_flight = watchdog.request();
    let (mut request, missed) = deadline::attach(request, body_timeout);
    request.extensions_mut().insert(ConnectInfo(peer));
    let Ok(mut response) = router.oneshot(request).await;
    if missed.missed() {
        // The rest of the body was never read: the connection cannot carry another request.
        response = ApiError::BodyTimeout.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response.map(|body| Answer::new(body, in_flight)))
}
