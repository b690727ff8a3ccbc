//! http/client: which client does a request count against?
//!
//! Rate limits and vote budgets are kept per client. The client is the peer address of the TCP
//! connection, which the serving loop puts on every request as `ConnectInfo<SocketAddr>`. A
//! proxy in front of the server makes every visitor look alike; when the peer is one of the
//! configured [`TrustedProxies`] (`TEXT2IMG_TRUSTED_PROXIES`), `X-Forwarded-For` is read to see
//! through it: the client is the right-most address in the chain that is not itself a trusted
//! proxy. From any other peer the header is ignored, since anyone can send it.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use super::errors::ApiError;

/// The address a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or(ApiError::NoClientAddress)?;
        let client = match parts.extensions.get::<TrustedProxies>() {
            Some(trusted) => trusted.client_of(peer.ip(), &parts.headers),
            None => peer.ip().to_canonical(),
        };
        Ok(Self(client))
    }
}

/// `X-Forwarded-For`: each proxy appends the address it got the request from.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The most `X-Forwarded-For` entries read from the right (a longer chain of trusted proxies
/// is not a real deployment).
const MAX_HOPS: usize = 32;

/// The proxies whose `X-Forwarded-For` is believed: addresses and networks. Put on every
/// request by the router (an extension), so [`ClientIp`] can see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self(networks.into_iter().map(|n| n.trunc()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` with `headers`: `peer` unless it is a trusted proxy;
    /// then the right-most `X-Forwarded-For` address that is not a trusted proxy. An entry that
    /// is not an address (or a header that is not text) ends the walk: the client is then the
    /// last address reached, a trusted proxy (which is where the garbage came from).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let mut hops = 0;
        for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                hops += 1;
                let Some(ip) = forwarded_address(entry) else {
                    return client;
                };
                client = ip;
                if !self.contains(ip) || hops >= MAX_HOPS {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write it.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = IpAddr::from_str(entry)
        .ok()
        .or_else(|| SocketAddr::from_str(entry).ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}

/// `TEXT2IMG_TRUSTED_PROXIES`: comma-separated addresses (`10.0.0.7`) and networks
/// (`10.0.0.0/8`, `fd00::/8`).
impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        let networks = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("`{entry}` is not an IP address or network (CIDR)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(networks))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                X_FORWARDED_FOR.clone(),
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        map
    }

    fn trusted() -> TrustedProxies {
        "10.0.0.0/8, 192.0.2.9, fd00::/8".parse().expect("valid")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[b"198.51.100.1"]);
        assert_eq!(
            trusted().client_of(ip("203.0.113.5"), &h),
            ip("203.0.113.5")
        );
        assert_eq!(
            TrustedProxies::default().client_of(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_address() {
        let t = trusted();
        // The client spoofed 1.1.1.1; the edge proxy appended the real address, 198.51.100.1.
        let h = headers(&[b"1.1.1.1, 198.51.100.1, 10.1.2.3"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &h), ip("198.51.100.1"));
        // Several headers are one list, in order.
        let h = headers(&[b"1.1.1.1", b"198.51.100.1", b"10.1.2.3"]);
        assert_eq!(t.client_of(ip("192.0.2.9"), &h), ip("198.51.100.1"));
        // Ports, IPv6, and IPv4 mapped into IPv6.
        let h = headers(&[b"[2001:db8::1]:4711, 192.0.2.9:80"]);
        assert_eq!(t.client_of(ip("::ffff:10.0.0.1"), &h), ip("2001:db8::1"));
        // A chain of trusted proxies only: the farthest one.
        let h = headers(&[b"10.9.9.9, 10.1.1.1"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn garbage_is_never_trusted() {
        let t = trusted();
        let peer = ip("10.0.0.1");
        for bad in [
            &b"not an address"[..],
            b"",
            b",",
            b"198.51.100.1 198.51.100.2",
            b"198.51.100.1/24",
            b"999.1.1.1",
            b"unknown",
            b"\xff\xfe",
            b"198.51.100.1;evil",
        ] {
            assert_eq!(t.client_of(peer, &headers(&[bad])), peer, "{bad:?}");
        }
        // Garbage left of a good right-most entry is never reached.
        let h = headers(&[b"garbage, 198.51.100.1"]);
        assert_eq!(t.client_of(peer, &h), ip("198.51.100.1"));
        // Garbage behind a trusted hop: the walk stops at that hop.
        let h = headers(&[b"198.51.100.1, garbage, 10.2.2.2"]);
        assert_eq!(t.client_of(peer, &h), ip("10.2.2.2"));
    }

    #[test]
    fn a_long_chain_is_read_only_so_far() {
        let chain = vec!["10.0.0.2"; 10_000].join(", ");
        let h = headers(&[format!("198.51.100.1, {chain}").as_bytes()]);
        assert_eq!(trusted().client_of(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn trusted_lists_parse() {
        let t: TrustedProxies = " 10.0.0.7 , 10.1.0.0/16,,::1 ".parse().expect("valid");
        assert!(t.contains(ip("10.0.0.7")));
        assert!(!t.contains(ip("10.0.0.8")));
        assert!(t.contains(ip("10.1.200.3")));
        assert!(t.contains(ip("::1")));
        assert!("".parse::<TrustedProxies>().expect("valid").is_empty());
        for bad in ["10.0.0", "10.0.0.0/33", "example.com", "10.0.0.1-10.0.0.9"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }
}
