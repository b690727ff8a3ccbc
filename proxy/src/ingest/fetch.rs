//! Getting an image's bytes: http(s) with timeouts, retries and a size cap, or a local file.
//!
//! Blocking on purpose: ingest runs a bounded pool of fetch threads (`--fetch-workers`), which
//! bounds concurrency per host as well as memory. Every failure is a one-line reason that the
//! ingest report prints beside the row. Where a URL may lead is [`super::policy`]'s to say:
//! every address connected to, and every redirect hop, is checked there.

use std::io::Read;
use std::time::Duration;

use url::Url;

use super::policy::{self, AddressPolicy, CheckedResolver};
use super::tsv::Source;

/// Redirects followed per fetch.
pub const MAX_REDIRECTS: usize = 5;

/// Fetch limits.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Whole-request limit (connect + headers + body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first try, for transient failures (timeouts, connection errors, 5xx,
    /// 408, 429).
    pub retries: u32,
    /// First backoff; doubled after each retry.
    pub backoff: Duration,
    /// Larger images are refused (default 64 MiB: a 100-megapixel JPEG fits).
    pub max_bytes: u64,
    /// Which addresses may be connected to (by default no loopback, private, link-local or other
    /// special-purpose address).
    pub addresses: AddressPolicy,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_bytes: 64 << 20,
            addresses: AddressPolicy::default(),
        }
    }
}

/// A reusable fetcher (one connection pool for all threads).
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    config: FetchConfig,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(config.timeout)
            .timeout_connect(config.connect_timeout)
            // Followed one hop at a time in `follow`, each hop checked.
            .redirects(0)
            .resolver(CheckedResolver(config.addresses.clone()))
            .user_agent(concat!("text2img-ingest/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent, config }
    }

    /// The bytes of an image, or why not.
    pub fn fetch(&self, source: &Source) -> Result<Vec<u8>, String> {
        let bytes = match source {
            Source::File { path, .. } => self.read_file(path)?,
            Source::Http(url) => self.get_with_retries(url)?,
        };
        if bytes.is_empty() {
            return Err("empty (0 bytes)".into());
        }
        Ok(bytes)
    }

    fn read_file(&self, path: &std::path::Path) -> Result<Vec<u8>, String> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("file not found: {}", path.display()),
            _ => format!("{}: {e}", path.display()),
        })?;
        if !meta.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
        if meta.len() > self.config.max_bytes {
            return Err(format!(
                "{} is {} bytes, over the {}-byte limit",
                path.display(),
                meta.len(),
                self.config.max_bytes
            ));
        }
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn get_with_retries(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut backoff = self.config.backoff;
        let mut attempt = 0;
        loop {
            match self.get(url) {
                Ok(bytes) => return Ok(bytes),
                Err(Failure::Permanent(why)) => return Err(why),
                Err(Failure::Transient(why)) if attempt >= self.config.retries => {
                    return Err(if attempt == 0 {
                        why
                    } else {
                        format!("{why} (after {} tries)", attempt + 1)
                    });
                }
                Err(Failure::Transient(_)) => {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let response = self.follow(url)?;
        // Content check from the headers: a page served where an image was expected (a login
        // wall, a 200 error page) is refused before reading it. A missing or generic type
        // (`application/octet-stream`, `text/plain`) is no verdict: the bytes decide (`sniff`).
        let content_type = response
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.contains("html") || content_type.contains("json") {
            return Err(Failure::Permanent(format!(
                "{url} served `{content_type}`, not an image"
            )));
        }
        if let Some(length) = response
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            && length > self.config.max_bytes
        {
            return Err(Failure::Permanent(format!(
                "{url} is {length} bytes, over the {}-byte limit",
                self.config.max_bytes
            )));
        }
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(self.config.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timed out") {
                    Failure::Transient(format!(
                        "timed out after {:?} fetching {url}",
                        self.config.timeout
                    ))
                } else {
                    Failure::Transient(format!("reading {url}: {e}"))
                }
            })?;
        if bytes.len() as u64 > self.config.max_bytes {
            return Err(Failure::Permanent(format!(
                "{url} is over the {}-byte limit",
                self.config.max_bytes
            )));
        }
        Ok(bytes)
    }

    /// GET `url`, following up to [`MAX_REDIRECTS`] redirects one hop at a time: each target is
    /// checked by [`policy::redirect_target`], each address by the resolver.
    fn follow(&self, url: &str) -> Result<ureq::Response, Failure> {
        let permanent = |why| Failure::Permanent(why);
        let mut hop = Url::parse(url).map_err(|e| permanent(format!("`{url}`: {e}")))?;
        policy::check_url(&hop).map_err(permanent)?;
        let mut visited = vec![hop.clone()];
        loop {
            let response = self.call(&hop).map_err(|failure| match failure {
                Failure::Permanent(why) if visited.len() > 1 => {
                    permanent(format!("{why}; reached by a redirect to {hop}"))
                }
                other => other,
            })?;
            let status = response.status();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return if (300..400).contains(&status) {
                    Err(permanent(format!("HTTP {status} from {hop}")))
                } else {
                    Ok(response)
                };
            }
            let location = response
                .header("location")
                .ok_or_else(|| permanent(format!("HTTP {status} from {hop} without a Location")))?;
            let next = policy::redirect_target(&hop, location).map_err(permanent)?;
            if visited.contains(&next) {
                return Err(permanent(format!(
                    "redirect loop: {hop} redirects back to {next}"
                )));
            }
            if visited.len() > MAX_REDIRECTS {
                return Err(permanent(format!(
                    "more than {MAX_REDIRECTS} redirects from {url}"
                )));
            }
            visited.push(next.clone());
            hop = next;
        }
    }

    /// One request, no redirect followed; a refused address is a permanent failure.
    fn call(&self, url: &Url) -> Result<ureq::Response, Failure> {
        match self.agent.get(url.as_str()).call() {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(code, _)) => {
                let why = format!("HTTP {code} from {url}");
                Err(if code >= 500 || code == 408 || code == 429 {
                    Failure::Transient(why)
                } else {
                    Failure::Permanent(why)
                })
            }
            Err(ureq::Error::Transport(t)) => {
                if let Some(refusal) = policy::refusal_in(&t) {
                    return Err(Failure::Permanent(refusal.to_string()));
                }
                let why = match t.kind() {
                    ureq::ErrorKind::Io if t.to_string().contains("timed out") => {
                        format!("timed out after {:?} fetching {url}", self.config.timeout)
                    }
                    ureq::ErrorKind::Dns => format!("cannot resolve the host of {url}"),
                    ureq::ErrorKind::ConnectionFailed => format!("cannot connect to {url}"),
                    _ => format!("fetching {url}: {t}"),
                };
                Err(match t.kind() {
                    ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                        Failure::Permanent(why)
                    }
                    _ => Failure::Transient(why),
                })
            }
        }
    }
}

enum Failure {
    /// Worth another try.
    Transient(String),
    Permanent(String),
}

/// Whether the bytes start like an image format we decode; otherwise what they look like, for
/// the failure report, which never quotes them (a response body may hold anything).
pub fn sniff(bytes: &[u8]) -> Result<(), String> {
    if image::guess_format(bytes).is_ok() {
        return Ok(());
    }
    let markup = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<');
    if markup {
        Err("not an image: the content is HTML or XML".into())
    } else {
        Err(format!(
            "not an image: unknown format ({} bytes)",
            bytes.len()
        ))
    }
}
