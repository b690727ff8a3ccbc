//! http/client: which client does a request count against?
//!
//! Rate limits and vote budgets are kept per client. The client is the peer address of the TCP
//! connection, which the serving loop puts on every request as `ConnectInfo<SocketAddr>`. (A
//! proxy in front of the server makes every visitor look alike; `X-Forwarded-For` from
//! configured proxy addresses is the way to see through it.)

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::errors::ApiError;

/// The address a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| Self(peer.ip()))
            .ok_or(ApiError::NoClientAddress)
    }
}
