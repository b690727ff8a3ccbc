//! Where may ingest fetch from? A TSV is input from anyone: its URLs must not reach the host's
//! own services (loopback), its network (private, link-local — the cloud metadata endpoint
//! 169.254.169.254 among them) or addresses that are no destination at all.
//!
//! Addresses are checked after DNS resolution, in the resolver the HTTP client connects with
//! ([`CheckedResolver`]), so the address checked is the address connected to: a name that
//! resolves to a public address for a check and a private one for the connection (DNS rebinding)
//! gains nothing. Redirects are followed by the fetcher, one hop at a time, each hop through
//! [`redirect_target`] (http(s) only, never https → http) and the same resolver.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::LazyLock;

use ipnet::IpNet;
use url::Url;

/// Which addresses ingest may connect to. The default refuses every special-purpose address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Connect to special-purpose addresses too (`ingest --allow-private-urls`): for a TSV of
    /// one's own whose images are on the local network.
    pub allow_private: bool,
    /// Networks allowed although special (one image server on the local network, a test server
    /// on loopback), everything else special still refused.
    pub allowed: Vec<IpNet>,
}

/// What makes an address special, as the refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Loopback,
    Private,
    LinkLocal,
    Unspecified,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    Shared,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Reserved or deprecated ranges that are no destination on the internet.
    Reserved,
}

impl Special {
    fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::Unspecified => "the unspecified address",
            Self::Shared => "a shared (carrier-grade NAT) address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// The special-purpose networks (IANA's registries), first match wins.
static SPECIAL: LazyLock<Vec<(IpNet, Special)>> = LazyLock::new(|| {
    use Special::*;
    [
        ("0.0.0.0/32", Unspecified),
        ("0.0.0.0/8", Reserved),
        ("10.0.0.0/8", Private),
        ("100.64.0.0/10", Shared),
        ("127.0.0.0/8", Loopback),
        ("169.254.0.0/16", LinkLocal),
        ("172.16.0.0/12", Private),
        ("192.0.0.0/24", Reserved),
        ("192.0.2.0/24", Documentation),
        ("192.88.99.0/24", Reserved),
        ("192.168.0.0/16", Private),
        ("198.18.0.0/15", Benchmarking),
        ("198.51.100.0/24", Documentation),
        ("203.0.113.0/24", Documentation),
        ("224.0.0.0/4", Multicast),
        ("255.255.255.255/32", Broadcast),
        ("240.0.0.0/4", Reserved),
        ("::/128", Unspecified),
        ("::1/128", Loopback),
        // IPv4-compatible (deprecated); the IPv4-mapped ::ffff:0:0/96 is classified by its
        // IPv4 address.
        ("::/96", Reserved),
        ("64:ff9b:1::/48", Private),
        ("100::/64", Reserved),
        ("2001:2::/48", Benchmarking),
        ("2001:db8::/32", Documentation),
        ("3fff::/20", Documentation),
        ("fc00::/7", Private),
        ("fe80::/10", LinkLocal),
        ("fec0::/10", Private),
        ("ff00::/8", Multicast),
    ]
    .into_iter()
    .map(|(net, class)| (net.parse().expect("a valid network"), class))
    .collect()
});

/// Why an address is special, or `None` for an ordinary (global unicast) one. An IPv6 address
/// that carries an IPv4 address — IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) or
/// 6to4 (`2002::/16`) — is as special as the IPv4 address it reaches.
pub fn classify(ip: IpAddr) -> Option<Special> {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_v4(v6)
    {
        return classify(IpAddr::V4(v4));
    }
    SPECIAL
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|&(_, class)| class)
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let octets = v6.octets();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

/// An address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused: {}{} (use --allow-private-urls to fetch from private networks)",
    self.subject(),
    self.class.describe()
)]
pub struct Refusal {
    /// The host as written in the URL.
    pub host: String,
    pub ip: IpAddr,
    pub class: Special,
}

impl Refusal {
    fn subject(&self) -> String {
        if self.host.parse::<IpAddr>().is_ok() {
            format!("{} is ", self.ip)
        } else {
            format!("{} resolves to {}, ", self.host, self.ip)
        }
    }
}

impl AddressPolicy {
    /// Whether `host` (as written) may be reached at `ip`.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(class) => Err(Refusal {
                host: host.to_string(),
                ip,
                class,
            }),
            None => Ok(()),
        }
    }
}

/// The HTTP client's resolver: the system's resolution, refused as a whole when any address it
/// gives is refused (a name that answers with a public and a private address is a rebinding
/// attempt, not a choice). The refusal travels as the `io::Error`'s inner error:
/// [`refusal_in`] finds it again.
#[derive(Debug, Clone)]
pub struct CheckedResolver(pub AddressPolicy);

impl ureq::Resolver for CheckedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let host = netloc
            .rsplit_once(':')
            .map_or(netloc, |(host, _port)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        for addr in &addrs {
            self.0.check(host, addr.ip()).map_err(io::Error::other)?;
        }
        Ok(addrs)
    }
}

/// The refusal behind an HTTP client error, if the resolver refused the address.
pub fn refusal_in(error: &ureq::Transport) -> Option<&Refusal> {
    std::error::Error::source(error)?
        .downcast_ref::<io::Error>()?
        .get_ref()?
        .downcast_ref::<Refusal>()
}

/// A URL ingest may request: http or https, with a host.
pub fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" | "https" => Err(format!("refused: `{url}` has no host")),
        other => Err(format!(
            "refused: `{other}` URLs are not fetched (only http and https)"
        )),
    }
}

/// Where a redirect from `from` with this `Location` leads, if it may be followed: relative
/// locations are resolved against `from`; only http(s); never from https down to http (the
/// next hop's address is checked when it is connected to).
pub fn redirect_target(from: &Url, location: &str) -> Result<Url, String> {
    let to = from
        .join(location)
        .map_err(|e| format!("redirect from {from} to an invalid location ({e})"))?;
    check_url(&to)?;
    if from.scheme() == "https" && to.scheme() == "http" {
        return Err(format!(
            "refused: a redirect from https to http ({from} → {to})"
        ));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        use Special::*;
        let table: &[(&str, Option<Special>)] = &[
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Reserved)),
            ("100.64.0.1", Some(Shared)),
            ("100.127.255.255", Some(Shared)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.2.7", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.7", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.1", Some(Benchmarking)),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("2002:7f00:1::", Some(Loopback)),
            ("::127.0.0.1", Some(Reserved)),
            ("2606:4700::1111", None),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(classify(ip), *want, "{ip}");
        }
    }

    #[test]
    fn the_policy_refuses_special_addresses_unless_allowed() {
        let deny = AddressPolicy::default();
        let metadata: IpAddr = "169.254.169.254".parse().expect("ip");
        assert_eq!(
            deny.check("169.254.169.254", metadata)
                .expect_err("refused")
                .to_string(),
            "refused: 169.254.169.254 is a link-local address \
             (use --allow-private-urls to fetch from private networks)"
        );
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(
            deny.check("localhost", loopback)
                .expect_err("refused")
                .to_string(),
            "refused: localhost resolves to 127.0.0.1, a loopback address \
             (use --allow-private-urls to fetch from private networks)"
        );
        assert!(
            deny.check("dns.google", "8.8.8.8".parse().expect("ip"))
                .is_ok()
        );

        let all = AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        };
        assert!(all.check("x", metadata).is_ok());

        let one = AddressPolicy {
            allowed: vec!["127.0.0.1/32".parse().expect("net")],
            ..AddressPolicy::default()
        };
        assert!(one.check("x", loopback).is_ok());
        assert!(one.check("x", "127.0.0.2".parse().expect("ip")).is_err());
        assert!(one.check("x", metadata).is_err());
    }

    #[test]
    fn the_resolver_refuses_names_of_special_addresses() {
        let resolver = CheckedResolver(AddressPolicy::default());
        let err = ureq::Resolver::resolve(&resolver, "localhost:80").expect_err("refused");
        let refusal = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Refusal>())
            .expect("a refusal");
        assert_eq!(refusal.class, Special::Loopback);
        // Literal addresses of every class (resolving a literal makes no query, and nothing
        // here connects).
        for (netloc, class) in [
            ("127.0.0.2:80", Special::Loopback),
            ("[::1]:80", Special::Loopback),
            ("10.0.0.1:80", Special::Private),
            ("192.168.1.1:80", Special::Private),
            ("[fd00::1]:80", Special::Private),
            ("169.254.169.254:80", Special::LinkLocal),
            ("[fe80::1]:80", Special::LinkLocal),
            ("[::ffff:a9fe:a9fe]:80", Special::LinkLocal),
            ("0.0.0.0:80", Special::Unspecified),
            ("100.64.0.1:80", Special::Shared),
            ("224.0.0.1:80", Special::Multicast),
            ("255.255.255.255:80", Special::Broadcast),
            ("192.0.2.1:80", Special::Documentation),
            ("198.18.0.1:80", Special::Benchmarking),
            ("240.0.0.1:80", Special::Reserved),
        ] {
            let err = ureq::Resolver::resolve(&resolver, netloc).expect_err(netloc);
            let refusal = err.get_ref().and_then(|e| e.downcast_ref::<Refusal>());
            assert_eq!(refusal.map(|r| r.class), Some(class), "{netloc}");
        }
        let open = CheckedResolver(AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        });
        assert!(
            !ureq::Resolver::resolve(&open, "127.0.0.1:80")
                .expect("allowed")
                .is_empty()
        );
    }

    #[test]
    fn redirect_hops_are_checked() {
        let https: Url = "https://a.example/dir/x.jpg".parse().expect("url");
        let http: Url = "http://a.example/dir/x.jpg".parse().expect("url");
        assert_eq!(
            redirect_target(&https, "y.jpg").expect("relative").as_str(),
            "https://a.example/dir/y.jpg"
        );
        assert_eq!(
            redirect_target(&http, "/top.jpg")
                .expect("absolute path")
                .as_str(),
            "http://a.example/top.jpg"
        );
        assert_eq!(
            redirect_target(&http, "//b.example/z.jpg")
                .expect("scheme-relative")
                .as_str(),
            "http://b.example/z.jpg"
        );
        assert!(redirect_target(&http, "https://b.example/").is_ok());
        let down = redirect_target(&https, "http://a.example/x.jpg").expect_err("downgrade");
        assert!(down.contains("from https to http"), "{down}");
        let file = redirect_target(&http, "file:///etc/passwd").expect_err("file");
        assert!(file.contains("only http and https"), "{file}");
        let gopher = redirect_target(&https, "gopher://a.example/").expect_err("gopher");
        assert!(gopher.contains("only http and https"), "{gopher}");
    }
}
