//! http/rate: may this client make this request now?
//!
//! Token buckets (GCRA, the `governor` crate) per client ([`ClientIp`]) and per kind of request:
//! votes (`/api/feedback`), text searches (`/api/search` with `text`, encoded on this server's
//! CPU), vector searches (`/api/search` with `vector`, a store lookup only, so a looser rate) and
//! `/api/similar`. A request over its rate is answered [`ApiError::RateLimited`] (429 with
//! `Retry-After`) before its handler runs. Health checks, the static site and the model files are
//! never limited: no bucket is attached to their routes.
//!
//! The buckets stay bounded under a flood of distinct addresses: IPv6 clients are keyed by their
//! /64 network (what one subscriber is given), a bucket that has refilled is forgotten (pruned at
//! most every [`PRUNE_EVERY`], on the request path: no timer task), and a table holding
//! `max_clients` buckets even after pruning refuses every request of its kind until it drains.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::client::ClientIp;
use super::errors::ApiError;
use super::{MAX_BODY, state::AppState};
use crate::clients::client_key;

/// How often refilled buckets are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// How soon a full table is pruned again (and what a client refused by it is told to wait).
const FULL_RETRY: Duration = Duration::from_secs(1);

/// A request rate: `count` per `per`, up to `burst` at once; or no limit. Written `30/min:10`
/// (30 a minute, bursts of 10), `5/s:20`, `100/h` (burst = count), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Off,
    Limit {
        count: NonZeroU32,
        per: Duration,
        burst: NonZeroU32,
    },
}

impl Rate {
    /// `count` per `per`, in bursts of up to `burst`.
    pub fn new(count: u32, per: Duration, burst: u32) -> Self {
        match (NonZeroU32::new(count), NonZeroU32::new(burst)) {
            (Some(count), Some(burst)) if !per.is_zero() => Self::Limit { count, per, burst },
            _ => Self::Off,
        }
    }

    fn quota(self) -> Option<Quota> {
        let Self::Limit { count, per, burst } = self else {
            return None;
        };
        Quota::with_period(per / count.get()).map(|q| q.allow_burst(burst))
    }
}

/// The units a rate may be written in.
const UNITS: [(&str, u64); 3] = [("s", 1), ("min", 60), ("h", 3600)];
/// The largest count a rate may give (one request per microsecond at most).
const MAX_COUNT: u32 = 1_000_000;

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let usage = || {
            format!(
                "`{text}`: write a rate as COUNT/UNIT[:BURST] (e.g. 5/s:20, 30/min:10) or off; units: s, min, h"
            )
        };
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        let seconds = UNITS
            .iter()
            .find(|(name, _)| *name == unit.trim())
            .map(|(_, seconds)| *seconds)
            .ok_or_else(usage)?;
        let burst: u32 = match burst {
            Some(b) => b.trim().parse().map_err(|_| usage())?,
            None => count,
        };
        if !(1..=MAX_COUNT).contains(&count) || !(1..=MAX_COUNT).contains(&burst) {
            return Err(format!(
                "`{text}`: the count and the burst must be between 1 and {MAX_COUNT} (or write off)"
            ));
        }
        Ok(Self::new(count, Duration::from_secs(seconds), burst))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Limit { count, per, burst } => {
                let unit = UNITS
                    .iter()
                    .find(|(_, seconds)| Duration::from_secs(*seconds) == *per)
                    .map_or("s", |(name, _)| name);
                write!(f, "{count}/{unit}:{burst}")
            }
        }
    }
}

/// Each kind of request's rate, per client. The defaults suit a small public deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /api/feedback`.
    pub feedback: Rate,
    /// `POST /api/search` with `text` (or a body that does not say `vector` only).
    pub text_search: Rate,
    /// `POST /api/search` with `vector`.
    pub vector_search: Rate,
    /// `POST /api/similar`.
    pub similar: Rate,
    /// Clients each kind keeps a bucket for at once.
    pub max_clients: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            feedback: Rate::new(30, Duration::from_secs(60), 10),
            text_search: Rate::new(5, Duration::from_secs(1), 20),
            vector_search: Rate::new(20, Duration::from_secs(1), 40),
            similar: Rate::new(10, Duration::from_secs(1), 20),
            max_clients: 100_000,
        }
    }
}

impl RateLimits {
    /// No limits (benchmarks, and tests about something else).
    pub fn off() -> Self {
        Self {
            feedback: Rate::Off,
            text_search: Rate::Off,
            vector_search: Rate::Off,
            similar: Rate::Off,
            ..Self::default()
        }
    }
}

/// One kind of request's buckets, one per client.
#[derive(Debug)]
pub struct ClientBuckets {
    /// What the client is told it sent too many of.
    what: &'static str,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    max_clients: usize,
    last_prune: Mutex<Instant>,
}

impl ClientBuckets {
    /// Buckets for `rate`; `None` when it is off.
    pub fn new(what: &'static str, rate: Rate, max_clients: usize) -> Option<Arc<Self>> {
        let quota = rate.quota()?;
        Some(Arc::new(Self {
            what,
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            max_clients: max_clients.max(1),
            last_prune: Mutex::new(Instant::now()),
        }))
    }

    /// Take a token for `client`, or say how long until one is there.
    pub fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        self.prune(PRUNE_EVERY);
        if self.limiter.len() >= self.max_clients {
            self.prune(FULL_RETRY);
            if self.limiter.len() >= self.max_clients {
                return Err(self.refused(
                    format!("too many clients are sending {} at once", self.what),
                    FULL_RETRY,
                ));
            }
        }
        self.limiter
            .check_key(&client_key(client))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.refused(
                    format!("too many {} from your address; retry later", self.what),
                    wait,
                )
            })
    }

    /// How many clients have a bucket now.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }

    fn refused(&self, message: String, retry_after: Duration) -> ApiError {
        ApiError::RateLimited {
            code: "rate_limited",
            message,
            retry_after,
        }
    }

    /// Forget refilled buckets, if the last pruning is `gap` ago (one thread at a time; the
    /// others go on).
    fn prune(&self, gap: Duration) {
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        if last.elapsed() >= gap {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            *last = Instant::now();
        }
    }
}

/// The buckets of every limited route.
#[derive(Debug, Clone)]
pub struct RateGuards {
    feedback: Option<Arc<ClientBuckets>>,
    search: SearchBuckets,
    similar: Option<Arc<ClientBuckets>>,
}

#[derive(Debug, Clone)]
struct SearchBuckets {
    text: Option<Arc<ClientBuckets>>,
    vector: Option<Arc<ClientBuckets>>,
}

type Route = MethodRouter<Arc<AppState>>;

impl RateGuards {
    pub fn new(limits: &RateLimits) -> Self {
        let max = limits.max_clients;
        Self {
            feedback: ClientBuckets::new("votes", limits.feedback, max),
            search: SearchBuckets {
                text: ClientBuckets::new("text searches", limits.text_search, max),
                vector: ClientBuckets::new("searches", limits.vector_search, max),
            },
            similar: ClientBuckets::new("similar-image searches", limits.similar, max),
        }
    }

    /// `/api/feedback`'s route, limited.
    pub fn feedback(&self, route: Route) -> Route {
        guard(route, self.feedback.clone())
    }

    /// `/api/similar`'s route (and `/api/cutoff`'s, which shares its bucket), limited.
    pub fn similar(&self, route: Route) -> Route {
        guard(route, self.similar.clone())
    }

    /// `/api/search`'s route: text and vector searches each against their own buckets.
    pub fn search(&self, route: Route) -> Route {
        if self.search.text.is_none() && self.search.vector.is_none() {
            return route;
        }
        route.route_layer(middleware::from_fn_with_state(
            self.search.clone(),
            limit_search,
        ))
    }
}

fn guard(route: Route, buckets: Option<Arc<ClientBuckets>>) -> Route {
    match buckets {
        Some(buckets) => route.route_layer(middleware::from_fn_with_state(buckets, limit)),
        None => route,
    }
}

async fn limit(
    State(buckets): State<Arc<ClientBuckets>>,
    ClientIp(client): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    match buckets.check(client) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// What `/api/search`'s body says about its kind: only whether `text` is there.
#[derive(Deserialize)]
struct SearchKind {
    #[serde(default)]
    text: Option<IgnoredAny>,
}

/// Read the body (at most [`MAX_BODY`]) to tell a text search from a vector search, then check
/// the client's bucket for that kind. A body that is not a JSON object counts as a text search
/// (the stricter rate); the handler then refuses it.
async fn limit_search(
    State(buckets): State<SearchBuckets>,
    ClientIp(client): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::BodyTooLarge.into_response(),
    };
    let is_vector = serde_json::from_slice::<SearchKind>(&bytes).is_ok_and(|k| k.text.is_none());
    let bucket = if is_vector {
        &buckets.vector
    } else {
        &buckets.text
    };
    if let Some(bucket) = bucket
        && let Err(refused) = bucket.check(client)
    {
        return refused.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let cases = [
            ("30/min:10", Rate::new(30, Duration::from_secs(60), 10)),
            ("5/s:20", Rate::new(5, Duration::from_secs(1), 20)),
            (" 100/h ", Rate::new(100, Duration::from_secs(3600), 100)),
            ("OFF", Rate::Off),
        ];
        for (text, rate) in cases {
            assert_eq!(text.parse::<Rate>(), Ok(rate), "{text}");
            assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate), "{text}");
        }
        assert_eq!(RateLimits::default().feedback.to_string(), "30/min:10");
    }

    #[test]
    fn bad_rates_are_refused() {
        for text in [
            "",
            "5",
            "5/",
            "/s",
            "5/day",
            "x/s",
            "5/s:",
            "5/s:x",
            "0/s",
            "5/s:0",
            "-1/s",
            "2000000/s",
            "5/s:2000000",
            "5/s:1:2",
        ] {
            assert!(text.parse::<Rate>().is_err(), "{text:?} must be refused");
        }
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn a_burst_is_refused_then_other_clients_go_on() {
        let buckets =
            ClientBuckets::new("votes", "1/h:3".parse().expect("rate"), 10).expect("a limit");
        let one: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..3 {
            assert!(buckets.check(one).is_ok());
        }
        let Err(ApiError::RateLimited { retry_after, .. }) = buckets.check(one) else {
            panic!("the fourth vote must be refused");
        };
        assert!(retry_after > Duration::from_secs(60), "{retry_after:?}");
        assert!(buckets.check("192.0.2.2".parse().expect("ip")).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let buckets =
            ClientBuckets::new("votes", "1/h:1".parse().expect("rate"), 4).expect("a limit");
        let refused = (0..50u8)
            .filter(|i| buckets.check(IpAddr::from([192, 0, 2, *i])).is_err())
            .count();
        assert!(buckets.clients() <= 4, "{} buckets", buckets.clients());
        assert_eq!(refused, 46);
    }
}
