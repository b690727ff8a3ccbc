//! http/watchdog: when has a connection waited long enough?
//!
//! A connection is in one of three phases, and each has its deadline:
//!
//! - **head**: a request head is on its way (the connection just opened, or a byte arrived after
//!   a keep-alive wait): it must be whole within `header_timeout` of that moment;
//! - **idle**: kept alive between requests, nothing arriving: closed `idle_timeout` after the
//!   last response;
//! - **busy**: a request is being answered: closed when nothing is read or written for
//!   `idle_timeout` (a client that stops reading its answer holds nothing for long).
//!
//! The serving loop wraps the socket in [`Watched`] (every byte in or out is seen), holds an
//! [`InFlight`] for each request until its response body has been written, and closes the
//! connection when [`Watchdog::expired`] returns; a phase change wakes it, since the new deadline
//! may be sooner than the one it sleeps on. The request body's own deadline is
//! [`super::deadline`]'s.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::limits::Limits;

/// One connection's clock.
#[derive(Debug)]
pub struct Watchdog {
    phase: Mutex<Phase>,
    /// Woken when the phase changes: the new deadline may be sooner than the one slept on.
    phase_changed: Notify,
}

#[derive(Debug)]
struct Phase {
    /// Requests whose response body is not written yet.
    in_flight: usize,
    /// When the current request head began to arrive (the connection's start for the first).
    head_since: Option<Instant>,
    /// When the last response was written.
    idle_since: Instant,
    /// When a byte was last read or written.
    last_io: Instant,
}

impl Watchdog {
    /// A connection that has just opened: its first head is due `header_timeout` from now.
    pub fn new() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                head_since: Some(now),
                idle_since: now,
                last_io: now,
            }),
            phase_changed: Notify::new(),
        })
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // The phase is plain data, valid after any panic.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bytes_read(&self) {
        let now = Instant::now();
        let mut phase = self.phase();
        phase.last_io = now;
        if phase.in_flight == 0 && phase.head_since.is_none() {
            phase.head_since = Some(now);
            drop(phase);
            self.phase_changed.notify_one();
        }
    }

    fn bytes_written(&self) {
        self.phase().last_io = Instant::now();
    }

    /// A request's head has arrived: busy until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        let mut phase = self.phase();
        phase.in_flight += 1;
        phase.head_since = None;
        drop(phase);
        self.phase_changed.notify_one();
        InFlight(self.clone())
    }

    fn deadline(&self, limits: &Limits) -> Instant {
        let phase = self.phase();
        if phase.in_flight > 0 {
            phase.last_io + limits.idle_timeout
        } else if let Some(since) = phase.head_since {
            since + limits.header_timeout
        } else {
            phase.idle_since + limits.idle_timeout
        }
    }

    /// Returns when the connection is past its phase's deadline.
    pub async fn expired(&self, limits: &Limits) {
        loop {
            let deadline = self.deadline(limits);
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    // The deadline may have moved on while asleep (more bytes, a new phase).
                    if self.deadline(limits) <= Instant::now() {
                        return;
                    }
                }
                () = self.phase_changed.notified() => {}
            }
        }
    }
}

/// A request being answered; dropped when its response body is written (or abandoned).
#[derive(Debug)]
pub struct InFlight(Arc<Watchdog>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut phase = self.0.phase();
        phase.in_flight -= 1;
        if phase.in_flight == 0 {
            phase.idle_since = now;
            phase.head_since = None;
            drop(phase);
            self.0.phase_changed.notify_one();
        }
    }
}

/// A response body that holds its request's [`InFlight`] until it is written.
#[derive(Debug)]
pub struct Answer {
    body: Body,
    _in_flight: InFlight,
}

impl Answer {
    pub fn new(body: Body, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket whose every byte read or written is told to its [`Watchdog`].
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    watchdog: Arc<Watchdog>,
}

impl<T> Watched<T> {
    pub fn new(io: T, watchdog: Arc<Watchdog>) -> Self {
        Self { io, watchdog }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.watchdog.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.watchdog.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.watchdog.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
