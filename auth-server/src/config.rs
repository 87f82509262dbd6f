//! Server configuration: the environment (and an optional `.env`), overridden by command-line
//! flags, validated into typed values. A bad value stops the start with one line that names the
//! variable and what it accepts.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file; its folder is created at start.
    Sqlite(PathBuf),
    /// Nothing persisted (`DATABASE_URL=memory:`): for trials and tests.
    Memory,
    /// A PostgreSQL server (`postgres://user@host:port/db`), shared by several nodes.
    Postgres(String),
}

impl Database {
    /// For logs: the file, or the server URL with any password masked.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Memory => "in memory".into(),
            Database::Postgres(url) => mask_password(url),
        }
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// What `/auth` answers when the store fails or is slower than `MAX_RESPONSE_TIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse everything (`backend_timeout` / `backend_error`). The safe default.
    Deny,
    /// Keep live sessions playing (`update_session` is allowed), refuse new ones: what old
    /// Flussonic did itself when its backend was unreachable.
    AllowUpdates,
    /// Allow everything: for operators who value uptime over enforcement.
    Allow,
}

impl FailMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Deny => "deny",
            FailMode::AllowUpdates => "allow_updates",
            FailMode::Allow => "allow",
        }
    }

    pub fn allows(self, update_session: bool) -> bool {
        match self {
            FailMode::Deny => false,
            FailMode::AllowUpdates => update_session,
            FailMode::Allow => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: Database,
    pub auth_duration: Duration,
    pub session_grace: Duration,
    /// The most live sessions a token without a limit may hold (`UNLIMITED_SESSIONS_CEILING`);
    /// 0: none.
    pub unlimited_sessions_ceiling: u32,
    pub session_cleanup_interval: Duration,
    pub max_response_time: Duration,
    pub fail_mode: FailMode,
    pub log_level: log::LevelFilter,
    pub enable_access_logs: bool,
    /// How long access log records are kept (`ACCESS_LOG_RETENTION`, days); older ones are
    /// purged in the background. `None` (0 days): kept for ever.
    pub access_log_retention: Option<Duration>,
    pub api_host: IpAddr,
    pub api_port: u16,
    /// Keys of the management API. Never logged or printed. Empty: loopback clients only.
    pub api_keys: Vec<ApiKey>,
    /// Without API keys, the host names the management API answers to besides `localhost`,
    /// `127.0.0.1` and `[::1]` (`API_ALLOWED_HOSTS`, comma-separated, lower-case): a loopback
    /// client is only trusted when it also asked for a loopback name, so that a page whose name
    /// was rebound to 127.0.0.1 (DNS rebinding) cannot reach the key-less API.
    pub api_allowed_hosts: Vec<String>,
    /// A secret every media-server hook request must carry (`HOOK_SECRET`), as the
    /// `hook_secret` query argument or the `X-Hook-Secret` header; none: hooks take no
    /// credentials. Never logged or printed.
    pub hook_secret: Option<HookSecret>,
    /// HMAC key for token digests (`TOKEN_HASH_KEY`, hex); when absent, a key file beside the
    /// database is used (and created). Never logged or printed.
    pub token_hash_key: Option<Vec<u8>>,
    /// Event tickets: how long a login's access token lasts (`ACCESS_TOKEN_TTL`, seconds).
    pub access_token_ttl: Duration,
    /// Event tickets: whether anyone may register an account (`REGISTRATION=open`, the
    /// default) or only administrators and API keys may create them (`closed`).
    pub open_registration: bool,
    /// Failed logins allowed per username and per client address within a window
    /// (`LOGIN_MAX_FAILURES_PER_USER`, `LOGIN_MAX_FAILURES_PER_IP`, `LOGIN_FAILURE_WINDOW`).
    pub login_limits: auth_core::account::LoginLimits,
    /// Signed tokens: how far past `exp` (or before `nbf`) a token is still accepted, for clock
    /// differences between the minting and the verifying machine.
    pub signed_token_leeway: Duration,
    /// Signed tokens: lifetime of a minted playback token when the request names none.
    pub playback_token_ttl: Duration,
    /// Signed tokens: the player URL handed out with a minted playback token; `{token}` is
    /// filled in, `{stream}` too when the token unlocks exactly one stream.
    pub player_url_template: String,
    /// nginx `auth_request`: lifetime of the signed token an allowed playlist answer carries for
    /// its segments (`SEGMENT_TOKEN_TTL`); zero = off, no token is minted.
    pub segment_token_ttl: Duration,
    /// nginx `auth_request`: whether an `X-Stream-Name` header names the stream
    /// (`NGINX_AUTH_STREAM_HEADER`). Off by default: nginx passes the player's own headers to the
    /// subrequest, so unless the operator's config always sets it, a player could name a stream
    /// its token allows while fetching another.
    pub nginx_auth_stream_header: bool,
    /// Where cuts are pushed: each media server's control API (`NGINX_RTMP_CONTROL_URL`,
    /// `FLUSSONIC_API_URL` and `FLUSSONIC_API_AUTH`, `SRS_API_URL`, `MEDIAMTX_API_URL`).
    pub control: crate::control::ControlConfig,
    /// Edge tokens: what an allowed nginx `auth_request` playlist answer carries for its
    /// segments when `SEGMENT_TOKEN_TTL` is set (`SEGMENT_TOKEN_FORMAT`).
    pub segment_token_format: SegmentFormat,
    /// Edge tokens: `iss` of minted JWTs (`JWT_ISSUER`); none when unset.
    pub jwt_issuer: Option<String>,
    /// Edge tokens: `aud` of minted JWTs whose request names none (`JWT_AUDIENCE`).
    pub jwt_audience: Option<String>,
    /// Edge tokens: the secret of nginx `secure_link_md5` (`NGINX_SECURE_LINK_SECRET`). Its
    /// `Debug` shows nothing of it.
    pub nginx_secure_link_secret: Option<auth_core::edge_url::secure_link::SecureLinkSecret>,
    /// Edge tokens: the Akamai EdgeAuth key (`AKAMAI_EDGEAUTH_KEY`, hex). Its `Debug` shows
    /// nothing of it.
    pub akamai_edgeauth_key: Option<auth_core::edge_url::akamai::EdgeAuthKey>,
}

/// What a playlist answer carries for its segments (`SEGMENT_TOKEN_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFormat {
    /// `X-Segment-Token`: a signed segment token, checked by `/hooks/nginx-auth` per segment.
    Token,
    /// `X-Segment-Link`: `md5=..&expires=..` for nginx `secure_link`, which checks segments
    /// itself with no subrequest.
    NginxSecureLink,
}

/// Where a viewer's player fetches a stream: Flussonic's HLS URL, the token in its query.
pub const DEFAULT_PLAYER_URL_TEMPLATE: &str = "/{stream}/index.m3u8?token={token}";
/// Longest lifetime a playback token may be minted with.
pub const MAX_PLAYBACK_TOKEN_TTL: u64 = 7 * 24 * 3600;
/// Longest lifetime of a segment token: it outlives the playlist answer it came with only by the
/// time a player takes to fetch that playlist's segments, and a revoked viewer keeps them that
/// long.
pub const MAX_SEGMENT_TOKEN_TTL: u64 = 3600;

/// A management API key and what it may do.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    /// Read-write keys may create, change and delete; read-only keys may only read.
    pub write: bool,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}, ..)", if self.write { "rw" } else { "ro" })
    }
}

/// `HOOK_SECRET`: its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSecret(pub String);

impl fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookSecret(..)")
    }
}

impl HookSecret {
    /// At least [`MIN_API_KEY_LEN`] characters, URL-safe (`A-Z a-z 0-9 - . _ ~`) so that it
    /// can be pasted into a hook URL unescaped. The error never repeats the value.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        let url_safe = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if value.len() < MIN_API_KEY_LEN || !url_safe {
            return Err(ConfigError(format!(
                "HOOK_SECRET is not valid: expected at least {MIN_API_KEY_LEN} characters of \
                 A-Z, a-z, 0-9, -, ., _ or ~ (e.g. from `openssl rand -hex 24`)"
            )));
        }
        Ok(HookSecret(value.to_owned()))
    }
}

/// Shortest accepted management API key.
pub const MIN_API_KEY_LEN: usize = 16;

/// A configuration error: one line, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line; each wins over its environment variable.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub auth_duration: Option<String>,
    pub session_grace: Option<String>,
    pub session_cleanup_interval: Option<String>,
    pub max_response_time: Option<String>,
    pub fail_mode: Option<String>,
    pub log_level: Option<String>,
    pub enable_access_logs: Option<String>,
    pub api_host: Option<String>,
    pub api_port: Option<String>,
    pub segment_token_ttl: Option<String>,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/tokens.db";

impl Config {
    /// Reads the process environment (after `.env`, if the caller loaded it) and `overrides`.
    pub fn from_env(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load(|name| std::env::var(name).ok(), overrides)
    }

    /// Builds a configuration from any variable lookup; `from_env` uses the process environment.
    pub fn load(
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str, flag: &Option<String>| -> Option<String> {
            flag.clone()
                .or_else(|| env(name))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let o = overrides;
        let config = Config {
            database: parse_database_url(
                &get("DATABASE_URL", &o.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            )?,
            auth_duration: seconds("AUTH_DURATION", get("AUTH_DURATION", &o.auth_duration), 180, 30, 3600)?,
            session_grace: seconds("SESSION_GRACE", get("SESSION_GRACE", &o.session_grace), 30, 0, 3600)?,
            unlimited_sessions_ceiling: count(
                "UNLIMITED_SESSIONS_CEILING",
                get("UNLIMITED_SESSIONS_CEILING", &None),
                1000,
                0,
                1_000_000,
            )?,
            session_cleanup_interval: seconds(
                "SESSION_CLEANUP_INTERVAL",
                get("SESSION_CLEANUP_INTERVAL", &o.session_cleanup_interval),
                60,
                10,
                600,
            )?,
            max_response_time: fractional_seconds(
                "MAX_RESPONSE_TIME",
                get("MAX_RESPONSE_TIME", &o.max_response_time),
                2.5,
                0.01,
                30.0,
            )?,
            fail_mode: match get("AUTH_FAIL_MODE", &o.fail_mode).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("deny") => FailMode::Deny,
                Some("allow_updates") => FailMode::AllowUpdates,
                Some("allow") => FailMode::Allow,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "AUTH_FAIL_MODE=`{other}` is not valid: expected deny, allow_updates or allow"
                    )))
                }
            },
            log_level: parse_log_level(get("LOG_LEVEL", &o.log_level))?,
            enable_access_logs: parse_bool("ENABLE_ACCESS_LOGS", get("ENABLE_ACCESS_LOGS", &o.enable_access_logs), true)?,
            access_log_retention: match count("ACCESS_LOG_RETENTION", get("ACCESS_LOG_RETENTION", &None), 30, 0, 36_500)? {
                0 => None,
                days => Some(Duration::from_secs(u64::from(days) * 86_400)),
            },
            api_host: match get("API_HOST", &o.api_host) {
                None => IpAddr::from([127, 0, 0, 1]),
                Some(host) if host.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
                Some(host) => host.parse().map_err(|_| {
                    ConfigError(format!("API_HOST=`{host}` is not valid: expected an IP address such as 127.0.0.1 or 0.0.0.0"))
                })?,
            },
            api_port: match get("API_PORT", &o.api_port) {
                None => 8080,
                Some(port) => port
                    .parse::<u16>()
                    .map_err(|_| ConfigError(format!("API_PORT=`{port}` is not valid: expected a port from 0 to 65535")))?,
            },
            api_keys: parse_api_keys(env("API_KEY"), env("API_KEYS"))?,
            hook_secret: env("HOOK_SECRET")
                .filter(|v| !v.trim().is_empty())
                .map(|v| HookSecret::parse(&v))
                .transpose()?,
            api_allowed_hosts: env("API_ALLOWED_HOSTS")
                .map(|list| {
                    list.split(',')
                        .map(|host| host.trim().to_ascii_lowercase())
                        .filter(|host| !host.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            token_hash_key: match env("TOKEN_HASH_KEY").map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()) {
                None => None,
                Some(key) => match hex::decode(&key) {
                    Ok(bytes) if bytes.len() >= auth_core::secret::MIN_KEY_LEN => Some(bytes),
                    // The value is a secret: never echo it.
                    _ => {
                        return Err(ConfigError(format!(
                            "TOKEN_HASH_KEY is not valid: expected at least {} hex characters (e.g. from `openssl rand -hex 32`)",
                            auth_core::secret::MIN_KEY_LEN * 2
                        )))
                    }
                },
            },
            signed_token_leeway: seconds("SIGNED_TOKEN_LEEWAY", get("SIGNED_TOKEN_LEEWAY", &None), 30, 0, 600)?,
            playback_token_ttl: seconds(
                "PLAYBACK_TOKEN_TTL",
                get("PLAYBACK_TOKEN_TTL", &None),
                3600,
                10,
                MAX_PLAYBACK_TOKEN_TTL,
            )?,
            player_url_template: get("PLAYER_URL_TEMPLATE", &None).unwrap_or_else(|| DEFAULT_PLAYER_URL_TEMPLATE.into()),
            segment_token_ttl: seconds(
                "SEGMENT_TOKEN_TTL",
                get("SEGMENT_TOKEN_TTL", &o.segment_token_ttl),
                0,
                0,
                MAX_SEGMENT_TOKEN_TTL,
            )?,
            nginx_auth_stream_header: parse_bool(
                "NGINX_AUTH_STREAM_HEADER",
                get("NGINX_AUTH_STREAM_HEADER", &None),
                false,
            )?,
            access_token_ttl: Duration::ZERO,
            open_registration: match get("REGISTRATION", &None).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                None | Some("open") => true,
                Some("closed") => false,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "REGISTRATION=`{other}` is not valid: expected open or closed"
                    )))
                }
            },
            login_limits: auth_core::account::LoginLimits::default(),
            segment_token_format: SegmentFormat::Token,
            jwt_issuer: get("JWT_ISSUER", &None),
            jwt_audience: get("JWT_AUDIENCE", &None),
            nginx_secure_link_secret: None,
            akamai_edgeauth_key: None,
            control: crate::control::ControlConfig::default(),
        };
        let mut config = config;
        config.control = crate::control::ControlConfig::load(|name| get(name, &None))?;
        config.access_token_ttl = seconds(
            "ACCESS_TOKEN_TTL",
            get("ACCESS_TOKEN_TTL", &None),
            3600,
            60,
            7 * 86400,
        )?;
        config.login_limits = auth_core::account::LoginLimits {
            per_username: count(
                "LOGIN_MAX_FAILURES_PER_USER",
                get("LOGIN_MAX_FAILURES_PER_USER", &None),
                5,
                1,
                1000,
            )?,
            per_ip: count(
                "LOGIN_MAX_FAILURES_PER_IP",
                get("LOGIN_MAX_FAILURES_PER_IP", &None),
                20,
                1,
                100_000,
            )?,
            window: seconds(
                "LOGIN_FAILURE_WINDOW",
                get("LOGIN_FAILURE_WINDOW", &None),
                900,
                1,
                86400,
            )?,
        };
        edge_settings(&mut config, &get)?;
        if !config.player_url_template.contains("{token}") {
            return Err(ConfigError(format!(
                "PLAYER_URL_TEMPLATE=`{}` is not valid: it must contain {{token}}",
                config.player_url_template
            )));
        }
        if matches!(config.database, Database::Postgres(_)) && config.token_hash_key.is_none() {
            return Err(ConfigError(
                "TOKEN_HASH_KEY is required with a PostgreSQL DATABASE_URL: every node must hash tokens with the same key".into(),
            ));
        }
        Ok(config)
    }

    pub fn session_policy(&self) -> auth_core::SessionPolicy {
        auth_core::SessionPolicy {
            auth_duration: self.auth_duration,
            grace: self.session_grace,
            unlimited_ceiling: self.unlimited_sessions_ceiling,
        }
    }
}

/// The edge-token settings (`SEGMENT_TOKEN_FORMAT`, `NGINX_SECURE_LINK_SECRET`,
/// `AKAMAI_EDGEAUTH_KEY`). Errors name the variable, never the secret.
fn edge_settings(
    config: &mut Config,
    get: &dyn Fn(&str, &Option<String>) -> Option<String>,
) -> Result<(), ConfigError> {
    use auth_core::edge_url::{akamai::EdgeAuthKey, secure_link::SecureLinkSecret};
    if let Some(secret) = get("NGINX_SECURE_LINK_SECRET", &None) {
        let secret = SecureLinkSecret::new(&secret)
            .map_err(|err| ConfigError(format!("NGINX_SECURE_LINK_SECRET is not valid: {err}")))?;
        config.nginx_secure_link_secret = Some(secret);
    }
    if let Some(key) = get("AKAMAI_EDGEAUTH_KEY", &None) {
        let key = EdgeAuthKey::from_hex(&key)
            .map_err(|err| ConfigError(format!("AKAMAI_EDGEAUTH_KEY is not valid: {err}")))?;
        config.akamai_edgeauth_key = Some(key);
    }
    config.segment_token_format = match get("SEGMENT_TOKEN_FORMAT", &None)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("token") => SegmentFormat::Token,
        Some("nginx_secure_link") if config.nginx_secure_link_secret.is_some() => {
            SegmentFormat::NginxSecureLink
        }
        Some("nginx_secure_link") => {
            return Err(ConfigError(
                "SEGMENT_TOKEN_FORMAT=`nginx_secure_link` needs NGINX_SECURE_LINK_SECRET".into(),
            ))
        }
        Some(other) => {
            return Err(ConfigError(format!(
                "SEGMENT_TOKEN_FORMAT=`{other}` is not valid: expected token or nginx_secure_link"
            )))
        }
    };
    Ok(())
}

/// `sqlite://./rel/path`, `sqlite:///abs/path`, `sqlite:relative`, a bare path, or `memory:`.
pub fn parse_database_url(url: &str) -> Result<Database, ConfigError> {
    if url == "memory:" || url == "sqlite::memory:" {
        return Ok(Database::Memory);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_owned()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(ConfigError(format!(
            "DATABASE_URL scheme `{scheme}` is not supported: expected sqlite://PATH, postgres://..., a bare file path, or memory:"
        )));
    } else {
        url
    };
    if path.is_empty() {
        return Err(ConfigError(
            "DATABASE_URL names no file: expected sqlite://PATH or a bare file path".into(),
        ));
    }
    Ok(Database::Sqlite(PathBuf::from(path)))
}

/// `API_KEY` is one read-write key (the seed's variable); `API_KEYS` adds more as a comma-separated
/// list of `rw:KEY` or `ro:KEY`. Error messages never repeat a key.
fn parse_api_keys(
    single: Option<String>,
    list: Option<String>,
) -> Result<Vec<ApiKey>, ConfigError> {
    let check = |name: &str, key: &str| -> Result<(), ConfigError> {
        if key.len() < MIN_API_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError(format!(
                "{name} holds a key that is not valid: expected at least {MIN_API_KEY_LEN} printable characters without spaces"
            )));
        }
        Ok(())
    };
    let mut keys = Vec::new();
    if let Some(key) = single
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
    {
        check("API_KEY", &key)?;
        keys.push(ApiKey { key, write: true });
    }
    for entry in list
        .iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (write, key) =
            match entry.split_once(':') {
                Some(("rw", key)) => (true, key),
                Some(("ro", key)) => (false, key),
                _ => return Err(ConfigError(
                    "API_KEYS is not valid: expected a comma-separated list of rw:KEY or ro:KEY"
                        .into(),
                )),
            };
        check("API_KEYS", key)?;
        keys.push(ApiKey {
            key: key.to_owned(),
            write,
        });
    }
    Ok(keys)
}

fn seconds(
    name: &str,
    value: Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs(default));
    };
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError(format!(
            "{name}=`{value}` is out of range: expected whole seconds from {min} to {max}"
        ))),
    }
}

fn count(
    name: &str,
    value: Option<String>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError(format!(
            "{name}=`{value}` is out of range: expected a whole number from {min} to {max}"
        ))),
    }
}

fn fractional_seconds(
    name: &str,
    value: Option<String>,
    default: f64,
    min: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs_f64(default));
    };
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(Duration::from_secs_f64(n)),
        _ => Err(ConfigError(format!(
            "{name}=`{value}` is out of range: expected seconds from {min} to {max}"
        ))),
    }
}

fn parse_bool(name: &str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!(
            "{name}=`{value}` is not valid: expected true or false"
        ))),
    }
}

/// Accepts Python's level names too (the seed's `.env` files use WARNING and CRITICAL).
fn parse_log_level(value: Option<String>) -> Result<log::LevelFilter, ConfigError> {
    let Some(value) = value else {
        return Ok(log::LevelFilter::Info);
    };
    Ok(match value.to_ascii_uppercase().as_str() {
        "TRACE" => log::LevelFilter::Trace,
        "DEBUG" => log::LevelFilter::Debug,
        "INFO" => log::LevelFilter::Info,
        "WARN" | "WARNING" => log::LevelFilter::Warn,
        "ERROR" | "CRITICAL" => log::LevelFilter::Error,
        "OFF" => log::LevelFilter::Off,
        _ => {
            return Err(ConfigError(format!(
                "LOG_LEVEL=`{value}` is not valid: expected TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or OFF"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], overrides: Overrides) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|name| map.get(name).cloned(), &overrides)
    }

    #[test]
    fn signed_token_settings() {
        let config = load(&[], Overrides::default()).unwrap();
        assert_eq!(config.signed_token_leeway, Duration::from_secs(30));
        assert_eq!(config.playback_token_ttl, Duration::from_secs(3600));
        assert_eq!(config.player_url_template, DEFAULT_PLAYER_URL_TEMPLATE);
        assert_eq!(
            config.segment_token_ttl,
            Duration::ZERO,
            "off unless asked for"
        );
        let config = load(
            &[
                ("SIGNED_TOKEN_LEEWAY", "5"),
                ("PLAYBACK_TOKEN_TTL", "900"),
                ("SEGMENT_TOKEN_TTL", "120"),
                (
                    "PLAYER_URL_TEMPLATE",
                    "https://cdn.example/{stream}.m3u8?token={token}",
                ),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.signed_token_leeway, Duration::from_secs(5));
        assert_eq!(config.playback_token_ttl, Duration::from_secs(900));
        assert_eq!(config.segment_token_ttl, Duration::from_secs(120));
        let err = load(&[("SEGMENT_TOKEN_TTL", "3601")], Overrides::default()).unwrap_err();
        assert_eq!(
            err.0,
            "SEGMENT_TOKEN_TTL=`3601` is out of range: expected whole seconds from 0 to 3600"
        );
        let flag = Overrides {
            segment_token_ttl: Some("60".into()),
            ..Default::default()
        };
        let config = load(&[("SEGMENT_TOKEN_TTL", "-1")], flag).unwrap();
        assert_eq!(
            config.segment_token_ttl,
            Duration::from_secs(60),
            "the flag wins"
        );
        for (var, value) in [
            ("SIGNED_TOKEN_LEEWAY", "601"),
            ("PLAYBACK_TOKEN_TTL", "0"),
            ("PLAYBACK_TOKEN_TTL", "604801"),
            ("PLAYER_URL_TEMPLATE", "https://cdn.example/{stream}.m3u8"),
        ] {
            let err = load(&[(var, value)], Overrides::default()).unwrap_err();
            assert!(err.0.starts_with(var), "{err}");
        }
    }

    #[test]
    fn edge_token_settings() {
        let config = load(&[], Overrides::default()).unwrap();
        assert_eq!(config.segment_token_format, SegmentFormat::Token);
        assert!(config.nginx_secure_link_secret.is_none() && config.akamai_edgeauth_key.is_none());
        assert_eq!((config.jwt_issuer, config.jwt_audience), (None, None));
        let secret = "nginx-secret-0123456789";
        let key = "0123456789abcdef0123456789abcdef";
        let config = load(
            &[
                ("NGINX_SECURE_LINK_SECRET", secret),
                ("AKAMAI_EDGEAUTH_KEY", key),
                ("SEGMENT_TOKEN_FORMAT", "nginx_secure_link"),
                ("JWT_ISSUER", "https://auth.example"),
                ("JWT_AUDIENCE", "mediamtx"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.segment_token_format, SegmentFormat::NginxSecureLink);
        assert_eq!(config.jwt_issuer.as_deref(), Some("https://auth.example"));
        assert_eq!(config.jwt_audience.as_deref(), Some("mediamtx"));
        let shown = format!("{config:?}");
        assert!(!shown.contains(secret) && !shown.contains(key), "{shown}");
        for (vars, starts) in [
            (
                vec![("SEGMENT_TOKEN_FORMAT", "nginx_secure_link")],
                "SEGMENT_TOKEN_FORMAT",
            ),
            (
                vec![("SEGMENT_TOKEN_FORMAT", "md5")],
                "SEGMENT_TOKEN_FORMAT",
            ),
            (
                vec![("NGINX_SECURE_LINK_SECRET", "short")],
                "NGINX_SECURE_LINK_SECRET",
            ),
            (
                vec![("AKAMAI_EDGEAUTH_KEY", "not-hex-at-all-not-hex-at-all-00")],
                "AKAMAI_EDGEAUTH_KEY",
            ),
        ] {
            let err = load(&vars, Overrides::default()).unwrap_err();
            assert!(err.0.starts_with(starts), "{err}");
            assert!(
                !err.0.contains(vars[0].1) || starts == "SEGMENT_TOKEN_FORMAT",
                "{err}"
            );
        }
    }

    #[test]
    fn defaults_match_the_seed() {
        let config = load(&[], Overrides::default()).unwrap();
        assert_eq!(config.database, Database::Sqlite("./data/tokens.db".into()));
        assert_eq!(config.auth_duration, Duration::from_secs(180));
        assert_eq!(config.session_cleanup_interval, Duration::from_secs(60));
        assert_eq!(config.max_response_time, Duration::from_millis(2500));
        assert_eq!(config.log_level, log::LevelFilter::Info);
        assert!(config.enable_access_logs);
        assert_eq!(
            config.access_log_retention,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert!(config.open_registration);
        assert_eq!(config.unlimited_sessions_ceiling, 1000);
        assert_eq!(config.api_port, 8080);
        assert_eq!(config.fail_mode, FailMode::Deny);
        assert!(config.api_keys.is_empty());
        assert_eq!(config.token_hash_key, None);
    }

    #[test]
    fn database_url_forms() {
        assert_eq!(
            parse_database_url("sqlite:///var/lib/a.db").unwrap(),
            Database::Sqlite("/var/lib/a.db".into())
        );
        assert_eq!(
            parse_database_url("sqlite://./x.db").unwrap(),
            Database::Sqlite("./x.db".into())
        );
        assert_eq!(
            parse_database_url("/tmp/y.db").unwrap(),
            Database::Sqlite("/tmp/y.db".into())
        );
        assert_eq!(parse_database_url("memory:").unwrap(), Database::Memory);
        assert_eq!(
            parse_database_url("postgres://auth@db:5432/auth").unwrap(),
            Database::Postgres("postgres://auth@db:5432/auth".into())
        );
        assert_eq!(
            Database::Postgres("postgres://auth:hunter2@db/auth".into()).describe(),
            "postgres://auth:***@db/auth"
        );
        let err = load(
            &[("DATABASE_URL", "postgres://auth@db/auth")],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.0.starts_with("TOKEN_HASH_KEY is required"), "{err}");
        let key = "ab".repeat(32);
        assert!(load(
            &[
                ("DATABASE_URL", "postgresql://auth@db/auth"),
                ("TOKEN_HASH_KEY", &key)
            ],
            Overrides::default()
        )
        .is_ok());
        assert!(parse_database_url("mysql://host/db")
            .unwrap_err()
            .0
            .contains("DATABASE_URL"));
    }

    #[test]
    fn out_of_range_values_name_the_variable_and_range() {
        let err = load(&[("AUTH_DURATION", "5")], Overrides::default()).unwrap_err();
        assert_eq!(
            err.0,
            "AUTH_DURATION=`5` is out of range: expected whole seconds from 30 to 3600"
        );
        let err = load(&[("SESSION_CLEANUP_INTERVAL", "abc")], Overrides::default()).unwrap_err();
        assert!(
            err.0.starts_with("SESSION_CLEANUP_INTERVAL=") && err.0.contains("10 to 600"),
            "{err}"
        );
        let err = load(&[("MAX_RESPONSE_TIME", "NaN")], Overrides::default()).unwrap_err();
        assert!(err.0.starts_with("MAX_RESPONSE_TIME="), "{err}");
        assert!(load(&[("ENABLE_ACCESS_LOGS", "maybe")], Overrides::default()).is_err());
        assert!(load(&[("LOG_LEVEL", "LOUD")], Overrides::default()).is_err());
        assert!(load(&[("API_PORT", "70000")], Overrides::default()).is_err());
        assert!(load(&[("REGISTRATION", "maybe")], Overrides::default()).is_err());
        assert!(load(&[("ACCESS_LOG_RETENTION", "-1")], Overrides::default()).is_err());
        let set = [
            ("REGISTRATION", "Closed"),
            ("ACCESS_LOG_RETENTION", "0"),
            ("UNLIMITED_SESSIONS_CEILING", "5"),
        ];
        let config = load(&set, Overrides::default()).unwrap();
        assert!(!config.open_registration);
        assert_eq!(
            config.access_log_retention, None,
            "0 keeps records for ever"
        );
        assert_eq!(config.unlimited_sessions_ceiling, 5);
    }

    #[test]
    fn api_keys_and_hash_key() {
        let config = load(
            &[
                ("API_KEY", "seed-style-key-0123"),
                ("API_KEYS", "ro:reader-key-012345, rw:writer-key-012345"),
                ("TOKEN_HASH_KEY", &"ab".repeat(32)),
            ],
            Overrides::default(),
        )
        .unwrap();
        let keys: Vec<(&str, bool)> = config
            .api_keys
            .iter()
            .map(|k| (k.key.as_str(), k.write))
            .collect();
        assert_eq!(
            keys,
            [
                ("seed-style-key-0123", true),
                ("reader-key-012345", false),
                ("writer-key-012345", true)
            ]
        );
        assert_eq!(config.token_hash_key, Some(vec![0xab; 32]));
        let err = load(&[("API_KEYS", "admin:short")], Overrides::default()).unwrap_err();
        assert!(!err.0.contains("short"), "never echo a key: {err}");
        let err = load(&[("API_KEY", "tiny")], Overrides::default()).unwrap_err();
        assert!(
            err.0.starts_with("API_KEY ") && !err.0.contains("tiny"),
            "{err}"
        );
        let err = load(&[("TOKEN_HASH_KEY", "abcd")], Overrides::default()).unwrap_err();
        assert!(
            err.0.starts_with("TOKEN_HASH_KEY") && !err.0.contains("abcd"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_environment() {
        let overrides = Overrides {
            auth_duration: Some("60".into()),
            ..Default::default()
        };
        let config = load(
            &[("AUTH_DURATION", "120"), ("LOG_LEVEL", "warning")],
            overrides,
        )
        .unwrap();
        assert_eq!(config.auth_duration, Duration::from_secs(60));
        assert_eq!(config.log_level, log::LevelFilter::Warn);
    }
}
