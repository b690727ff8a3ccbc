//! config: which store, which model, which directories — resolved once, at start.
//!
//! Every setting is layered: command-line flag > environment variable > `qdrant.env` > default,
//! and validated here, so a typo is one clear error at start instead of a failure later. The
//! Qdrant API key is kept in a [`Secret`] whose `Debug` never shows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::TrustedProxies;
use crate::layout::DataDir;
use crate::store::cluster::{ClusterSettings, MAX_REPLICAS, MAX_SHARDS};
use crate::store::remote::RemoteConfig;

/// The keys `qdrant.env` (and the environment) may set.
pub const KEYS: [&str; 13] = [
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "QDRANT_COLLECTION",
    "QDRANT_TIMEOUT_SECS",
    "QDRANT_SHARDS",
    "QDRANT_REPLICATION_FACTOR",
    "QDRANT_WRITE_CONSISTENCY",
    "QDRANT_ON_DISK",
    "QDRANT_QUANTIZATION",
    "TEXT2IMG_ADMIN_TOKEN",
    "TEXT2IMG_CORS_ORIGINS",
    "TEXT2IMG_TRUSTED_PROXIES",
    "TEXT2IMG_IMAGE_ROOTS",
];

/// Defaults.
pub const DEFAULT_STORAGE: &str = "qdrant_storage";
pub const DEFAULT_COLLECTION: &str = "images";
pub const DEFAULT_ENV_FILE: &str = "qdrant.env";

/// A string that must not be shown: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Settings given on the command line (each overrides the environment and the file).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub storage: Option<PathBuf>,
    pub qdrant_url: Option<String>,
    pub collection: Option<String>,
    pub env_file: Option<PathBuf>,
    pub cluster: ClusterFlags,
}

/// How a new collection on a server is laid out, given on the command line (`ingest` only; each
/// overrides its `QDRANT_*` variable). Kept as text: checked here, with the other sources.
#[derive(Debug, Clone, Default)]
pub struct ClusterFlags {
    pub shards: Option<String>,
    pub replication_factor: Option<String>,
    pub write_consistency: Option<String>,
    pub on_disk: Option<String>,
    pub quantization: Option<String>,
}

/// Where vectors live.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Qdrant Edge in `storage/`.
    Embedded,
    /// A Qdrant server or cluster.
    Remote {
        url: String,
        api_key: Option<Secret>,
        timeout: Duration,
        /// How a collection ingest creates there is laid out.
        cluster: ClusterSettings,
    },
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub backend: Backend,
    pub collection: String,
    /// The local state directory: the embedded store, thumbnails, labels, ingest failures.
    pub storage: PathBuf,
    /// Token for `GET /api/labels` (unset: the export is refused).
    pub admin_token: Option<Secret>,
    /// Origins allowed to call the API from another site (CORS); empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (rate limits count per client); empty:
    /// the header is ignored.
    pub trusted_proxies: TrustedProxies,
    /// More folders the proxy may serve originals from (besides the storage directory and the
    /// folders ingest recorded there).
    pub image_roots: Vec<PathBuf>,
    /// Things worth telling the user that are not errors.
    pub warnings: Vec<String>,
}

/// A configuration error, naming the setting and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Settings {
    /// Resolve from flags, the process environment and the env file (`--env-file`, else
    /// `./qdrant.env` when present).
    pub fn resolve(flags: &Flags) -> Result<Self, ConfigError> {
        Self::resolve_with(flags, |key| std::env::var(key).ok())
    }

    /// Resolve with an explicit environment (tests).
    pub fn resolve_with(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let sources = Sources {
            file: env_file(flags)?,
            env: &env,
        };
        let mut warnings = Vec::new();
        let backend = backend(&sources, flags, &mut warnings)?;
        let collection = match sources.lookup("QDRANT_COLLECTION", flags.collection.as_deref()) {
            None => DEFAULT_COLLECTION.to_string(),
            Some((name, source)) => {
                crate::store::validate_collection_name(&name)
                    .map_err(|why| ConfigError(format!("{source}: {why}")))?;
                name
            }
        };
        let storage = flags
            .storage
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORAGE));
        if storage.exists() && !storage.is_dir() {
            return Err(ConfigError(format!(
                "--storage {}: exists and is not a directory",
                storage.display()
            )));
        }
        let admin_token = sources
            .lookup("TEXT2IMG_ADMIN_TOKEN", None)
            .map(|(t, _)| Secret(t));
        Ok(Self {
            backend,
            collection,
            storage,
            admin_token,
            cors_origins: cors_origins(&sources)?,
            trusted_proxies: trusted_proxies(&sources)?,
            image_roots: image_roots(&sources)?,
            warnings,
        })
    }

    /// The remote store's settings, when the backend is remote.
    pub fn remote(&self) -> Option<RemoteConfig> {
        match &self.backend {
            Backend::Embedded => None,
            Backend::Remote {
                url,
                api_key,
                timeout,
                cluster,
            } => Some(RemoteConfig {
                url: url.clone(),
                api_key: api_key.as_ref().map(|k| k.expose().to_string()),
                timeout: *timeout,
                cluster: *cluster,
            }),
        }
    }

    /// The files kept under the storage directory.
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(&self.storage)
    }

    /// One line saying where vectors live (never shows the key).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Embedded => format!(
                "embedded Qdrant in {}, collection `{}`",
                self.storage.display(),
                self.collection
            ),
            Backend::Remote { url, api_key, .. } => format!(
                "Qdrant at {url}{}, collection `{}`",
                if api_key.is_some() {
                    " (API key set)"
                } else {
                    ""
                },
                self.collection
            ),
        }
    }
}

/// Where settings come from besides flags: the environment, then the env file.
struct Sources<'a> {
    file: Option<EnvFile>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// flag > environment > file, with a name for the source (for errors); an empty value counts
    /// as unset (qdrant.env ships `QDRANT_URL=` for "embedded").
    fn lookup(&self, key: &str, flag: Option<&str>) -> Option<(String, String)> {
        if let Some(v) = flag.filter(|v| !v.is_empty()) {
            return Some((
                v.to_string(),
                format!("--{}", key.to_lowercase().replace('_', "-")),
            ));
        }
        if let Some(v) = (self.env)(key).filter(|v| !v.is_empty()) {
            return Some((v, format!("environment variable {key}")));
        }
        let (path, values) = self.file.as_ref()?;
        values
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| (v.clone(), format!("{key} in {}", path.display())))
    }
}

/// An env file's path and its values.
type EnvFile = (PathBuf, BTreeMap<String, String>);

/// `--env-file`, else `./qdrant.env` when present.
fn env_file(flags: &Flags) -> Result<Option<EnvFile>, ConfigError> {
    let path = match &flags.env_file {
        Some(path) => path.clone(),
        None => {
            let path = PathBuf::from(DEFAULT_ENV_FILE);
            if !path.is_file() {
                return Ok(None);
            }
            path
        }
    };
    let values = read_env_file(&path)?;
    Ok(Some((path, values)))
}

/// Embedded unless `QDRANT_URL` is set; the key and timeout of a remote store.
fn backend(
    sources: &Sources<'_>,
    flags: &Flags,
    warnings: &mut Vec<String>,
) -> Result<Backend, ConfigError> {
    let url = sources.lookup("QDRANT_URL", flags.qdrant_url.as_deref());
    let api_key = sources.lookup("QDRANT_API_KEY", None);
    let timeout = match sources.lookup("QDRANT_TIMEOUT_SECS", None) {
        None => Duration::from_secs(10),
        Some((v, source)) => match v.parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => Duration::from_secs(s),
            _ => {
                return Err(ConfigError(format!(
                    "{source}: `{v}` is not a number of seconds between 1 and 600"
                )));
            }
        },
    };
    let cluster = cluster(sources, &flags.cluster)?;
    let Some((url, source)) = url else {
        if !cluster.is_default() {
            warnings.push(
                "QDRANT_SHARDS, QDRANT_REPLICATION_FACTOR, QDRANT_WRITE_CONSISTENCY, \
                 QDRANT_ON_DISK and QDRANT_QUANTIZATION lay out a collection on a Qdrant server; \
                 QDRANT_URL is empty, so they are not used"
                    .to_string(),
            );
        }
        if api_key.is_some() {
            warnings.push(
                "QDRANT_API_KEY is set but QDRANT_URL is empty: using embedded Qdrant, \
                 the key is not used"
                    .to_string(),
            );
        }
        return Ok(Backend::Embedded);
    };
    validate_url(&url).map_err(|why| ConfigError(format!("{source}: {why}")))?;
    if url.starts_with("http://") && api_key.is_some() && !is_loopback(&url) {
        warnings.push(format!(
            "{source}: the API key is sent without TLS to a non-local host; use https://"
        ));
    }
    Ok(Backend::Remote {
        url,
        api_key: api_key.map(|(k, _)| Secret(k)),
        timeout,
        cluster,
    })
}

/// The layout asked for new collections on a server: `QDRANT_SHARDS`,
/// `QDRANT_REPLICATION_FACTOR`, `QDRANT_WRITE_CONSISTENCY`, `QDRANT_ON_DISK`,
/// `QDRANT_QUANTIZATION`.
fn cluster(sources: &Sources<'_>, flags: &ClusterFlags) -> Result<ClusterSettings, ConfigError> {
    let count = |key: &str, flag: &Option<String>, max: u32| {
        sources
            .lookup(key, flag.as_deref())
            .map(|(v, source)| match v.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError(format!(
                    "{source}: `{v}` is not a whole number between 1 and {max}"
                ))),
            })
            .transpose()
    };
    let on_disk = sources
        .lookup("QDRANT_ON_DISK", flags.on_disk.as_deref())
        .map(|(v, source)| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError(format!("{source}: `{v}` is not true or false"))),
        })
        .transpose()?;
    let quantization = sources
        .lookup("QDRANT_QUANTIZATION", flags.quantization.as_deref())
        .map(|(v, source)| {
            v.trim()
                .parse()
                .map_err(|why| ConfigError(format!("{source}: {why}")))
        })
        .transpose()?;
    let settings = ClusterSettings {
        shards: count("QDRANT_SHARDS", &flags.shards, MAX_SHARDS)?,
        replication_factor: count(
            "QDRANT_REPLICATION_FACTOR",
            &flags.replication_factor,
            MAX_REPLICAS,
        )?,
        write_consistency: count(
            "QDRANT_WRITE_CONSISTENCY",
            &flags.write_consistency,
            MAX_REPLICAS,
        )?,
        on_disk,
        quantization,
    };
    settings
        .validate()
        .map_err(|why| ConfigError(format!("QDRANT_WRITE_CONSISTENCY: {why}")))?;
    Ok(settings)
}

/// `TEXT2IMG_CORS_ORIGINS`: a comma-separated list of origins, or `*`.
fn cors_origins(sources: &Sources<'_>) -> Result<Vec<String>, ConfigError> {
    let Some((list, source)) = sources.lookup("TEXT2IMG_CORS_ORIGINS", None) else {
        return Ok(Vec::new());
    };
    let origins: Vec<String> = list
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    for origin in &origins {
        if origin != "*" {
            validate_url(origin)
                .map_err(|why| ConfigError(format!("{source}: origin `{origin}`: {why}")))?;
        }
    }
    Ok(origins)
}

/// `TEXT2IMG_TRUSTED_PROXIES`: comma-separated addresses and networks (CIDR).
fn trusted_proxies(sources: &Sources<'_>) -> Result<TrustedProxies, ConfigError> {
    match sources.lookup("TEXT2IMG_TRUSTED_PROXIES", None) {
        None => Ok(TrustedProxies::default()),
        Some((list, source)) => list
            .parse()
            .map_err(|why| ConfigError(format!("{source}: {why}"))),
    }
}

/// `TEXT2IMG_IMAGE_ROOTS`: comma-separated absolute folders.
fn image_roots(sources: &Sources<'_>) -> Result<Vec<PathBuf>, ConfigError> {
    let Some((list, source)) = sources.lookup("TEXT2IMG_IMAGE_ROOTS", None) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|folder| !folder.is_empty())
        .map(|folder| {
            let path = PathBuf::from(folder);
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(ConfigError(format!(
                    "{source}: `{folder}` is not an absolute path"
                )))
            }
        })
        .collect()
}

/// Parse `KEY=VALUE` lines: `#` comments, blank lines, optional `export `, optional single or
/// double quotes. Unknown keys are refused (a typo would otherwise be silently ignored).
pub fn parse_env_file(text: &str, path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let at = || format!("{} line {}", path.display(), n + 1);
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigError(format!("{}: expected KEY=VALUE", at())));
        };
        let key = key.trim();
        if !KEYS.contains(&key) {
            return Err(ConfigError(format!(
                "{}: unknown setting `{key}` (known: {})",
                at(),
                KEYS.join(", ")
            )));
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    parse_env_file(&text, path)
}

fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.strip_prefix('[') {
        // [v6 address]:port
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => (addr, rest.strip_prefix(':')),
            None => return Err(format!("`{url}`: unclosed `[` in the host")),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no host"));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{url}`: port `{port}` is not a number"));
    }
    Ok(())
}

fn is_loopback(url: &str) -> bool {
    ["http://localhost", "http://127.", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: Flags, env: &[(&str, &str)], file: Option<&str>) -> Result<Settings, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut flags = flags;
        if let Some(text) = file {
            let path = dir.path().join("qdrant.env");
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            flags.env_file = Some(path);
        } else {
            flags.env_file = Some(dir.path().join("none.env"));
            std::fs::write(flags.env_file.as_ref().unwrap_or(&PathBuf::new()), "")
                .map_err(|e| e.to_string())?;
        }
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(&flags, |k| env.get(k).cloned()).map_err(|e| e.to_string())
    }

    fn url_of(s: &Settings) -> Option<&str> {
        match &s.backend {
            Backend::Embedded => None,
            Backend::Remote { url, .. } => Some(url),
        }
    }

    #[test]
    fn defaults_are_embedded_images() {
        let s = resolve(
            Flags::default(),
            &[],
            Some("QDRANT_URL=\nQDRANT_API_KEY=\nQDRANT_COLLECTION=images\n"),
        )
        .expect("valid");
        assert_eq!(s.backend, Backend::Embedded);
        assert_eq!(s.collection, "images");
        assert_eq!(s.storage, PathBuf::from("qdrant_storage"));
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let file = Some("QDRANT_URL=http://file:6334\nQDRANT_COLLECTION=fromfile\n");
        let s = resolve(Flags::default(), &[], file).expect("valid");
        assert_eq!(url_of(&s), Some("http://file:6334"));
        assert_eq!(s.collection, "fromfile");
        let env = [
            ("QDRANT_URL", "http://env:6334"),
            ("QDRANT_COLLECTION", "fromenv"),
        ];
        let s = resolve(Flags::default(), &env, file).expect("valid");
        assert_eq!(url_of(&s), Some("http://env:6334"));
        assert_eq!(s.collection, "fromenv");
        let flags = Flags {
            qdrant_url: Some("https://flag:6334".into()),
            collection: Some("fromflag".into()),
            ..Flags::default()
        };
        let s = resolve(flags, &env, file).expect("valid");
        assert_eq!(url_of(&s), Some("https://flag:6334"));
        assert_eq!(s.collection, "fromflag");
    }

    #[test]
    fn empty_env_value_falls_through_to_file() {
        let s = resolve(
            Flags::default(),
            &[("QDRANT_URL", "")],
            Some("QDRANT_URL=http://f:1\n"),
        )
        .expect("valid");
        assert_eq!(url_of(&s), Some("http://f:1"));
    }

    #[test]
    fn bad_settings_name_the_source() {
        let check = |env: &[(&str, &str)], file: Option<&str>, expected: &str| {
            let err = resolve(Flags::default(), env, file).expect_err("must be refused");
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check(
            &[("QDRANT_URL", "localhost:6334")],
            None,
            "environment variable QDRANT_URL: `localhost:6334` is not an http",
        );
        check(&[], Some("QDRANT_URL=ftp://x\n"), "QDRANT_URL in ");
        check(&[], Some("QDRANT_URL=http://:6334\n"), "has no host");
        check(
            &[],
            Some("QDRANT_URL=http://h:port\n"),
            "port `port` is not a number",
        );
        check(
            &[],
            Some("QDRANT_COLLECTION=../etc\n"),
            "collection name `../etc`",
        );
        check(
            &[],
            Some("QDRANT_URLL=http://x\n"),
            "line 1: unknown setting `QDRANT_URLL`",
        );
        check(
            &[],
            Some("# c\n\nnot a pair\n"),
            "line 3: expected KEY=VALUE",
        );
        check(
            &[("QDRANT_TIMEOUT_SECS", "0")],
            Some("QDRANT_URL=http://h:1\n"),
            "between 1 and 600",
        );
        check(
            &[("TEXT2IMG_CORS_ORIGINS", "example.com")],
            None,
            "origin `example.com`",
        );
        check(
            &[("TEXT2IMG_TRUSTED_PROXIES", "10.0.0.1, proxy.local")],
            None,
            "environment variable TEXT2IMG_TRUSTED_PROXIES: `proxy.local` is not an IP",
        );
        let remote = Some("QDRANT_URL=http://h:1\n");
        check(
            &[("QDRANT_SHARDS", "0")],
            remote,
            "QDRANT_SHARDS: `0` is not a whole number between 1 and 1024",
        );
        check(
            &[("QDRANT_REPLICATION_FACTOR", "two")],
            remote,
            "QDRANT_REPLICATION_FACTOR: `two` is not a whole number",
        );
        check(&[("QDRANT_ON_DISK", "maybe")], remote, "not true or false");
        check(
            &[("QDRANT_QUANTIZATION", "pq")],
            remote,
            "environment variable QDRANT_QUANTIZATION: `pq` is not a quantization",
        );
        check(
            &[
                ("QDRANT_REPLICATION_FACTOR", "2"),
                ("QDRANT_WRITE_CONSISTENCY", "3"),
            ],
            remote,
            "more than the replication factor 2",
        );
    }

    #[test]
    fn cluster_settings_are_layered() {
        use crate::store::cluster::Quantization;
        let flags = Flags {
            cluster: ClusterFlags {
                replication_factor: Some("3".into()),
                ..Default::default()
            },
            ..Flags::default()
        };
        let s = resolve(
            flags,
            &[("QDRANT_SHARDS", "6"), ("QDRANT_QUANTIZATION", "int8")],
            Some(
                "QDRANT_URL=http://h:1\nQDRANT_SHARDS=2\nQDRANT_REPLICATION_FACTOR=2\n\
                 QDRANT_WRITE_CONSISTENCY=2\nQDRANT_ON_DISK=yes\n",
            ),
        )
        .unwrap();
        let cluster = s.remote().map(|r| r.cluster).unwrap();
        assert_eq!(
            cluster,
            ClusterSettings {
                shards: Some(6),
                replication_factor: Some(3),
                write_consistency: Some(2),
                on_disk: Some(true),
                quantization: Some(Quantization::Int8),
            }
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let embedded = resolve(Flags::default(), &[("QDRANT_SHARDS", "2")], None).unwrap();
        assert!(embedded.remote().is_none());
        assert!(
            embedded.warnings.iter().any(|w| w.contains("not used")),
            "{:?}",
            embedded.warnings
        );
    }

    #[test]
    fn image_roots_list() {
        let s = resolve(
            Flags::default(),
            &[("TEXT2IMG_IMAGE_ROOTS", "/srv/photos, /mnt/archive/,")],
            None,
        )
        .expect("valid");
        assert_eq!(
            s.image_roots,
            [PathBuf::from("/srv/photos"), PathBuf::from("/mnt/archive/")]
        );
        let err = resolve(
            Flags::default(),
            &[("TEXT2IMG_IMAGE_ROOTS", "/srv/photos,photos")],
            None,
        )
        .expect_err("a relative root");
        assert!(
            err.to_string()
                .contains("TEXT2IMG_IMAGE_ROOTS: `photos` is not an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn trusted_proxies_list() {
        let s = resolve(
            Flags::default(),
            &[],
            Some("TEXT2IMG_TRUSTED_PROXIES=10.0.0.0/8, ::1\n"),
        )
        .expect("valid");
        assert!(
            s.trusted_proxies
                .contains("10.20.30.40".parse().expect("ip"))
        );
        assert!(s.trusted_proxies.contains("::1".parse().expect("ip")));
        assert!(!s.trusted_proxies.contains("192.0.2.1".parse().expect("ip")));
        let none = resolve(Flags::default(), &[], None).expect("valid");
        assert!(none.trusted_proxies.is_empty());
    }

    #[test]
    fn env_file_syntax() {
        let values = parse_env_file(
            "# comment\nexport QDRANT_URL=\"https://x.cloud:6334\"\nQDRANT_API_KEY='k=1'\n",
            Path::new("qdrant.env"),
        )
        .expect("valid");
        assert_eq!(values["QDRANT_URL"], "https://x.cloud:6334");
        assert_eq!(values["QDRANT_API_KEY"], "k=1");
    }

    #[test]
    fn api_key_never_in_debug_or_describe() {
        let s = resolve(
            Flags::default(),
            &[("QDRANT_API_KEY", "sekrit-key-123")],
            Some("QDRANT_URL=https://c.example:6334\n"),
        )
        .expect("valid");
        assert!(!format!("{s:?}").contains("sekrit-key-123"));
        assert!(!s.describe().contains("sekrit-key-123"));
        assert!(!format!("{:?}", s.remote()).contains("sekrit-key-123"));
        assert_eq!(
            s.remote().and_then(|r| r.api_key).as_deref(),
            Some("sekrit-key-123")
        );
    }

    #[test]
    fn cors_origins_list() {
        let s = resolve(
            Flags::default(),
            &[(
                "TEXT2IMG_CORS_ORIGINS",
                "https://a.example, http://localhost:8080/",
            )],
            None,
        )
        .expect("valid");
        assert_eq!(
            s.cors_origins,
            ["https://a.example", "http://localhost:8080"]
        );
    }
}
