//! Configuration, resolved in layers: built-in defaults < `plinth.toml` < `PLINTH_*`
//! environment variables < command-line flags.
//!
//! Every setting is declared once in the `settings!` table below, which generates the
//! `Config` struct, the layer used for each source, the environment variable name and
//! the documentation table printed by `plinth config` and checked against the README.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::proxy::Networks;

/// How a setting's text (from the environment, the file or a flag) becomes a value.
pub trait SettingValue: Sized {
    fn parse_setting(raw: &str) -> Result<Self, String>;
    /// The value as shown by `plinth config`; secrets are redacted.
    fn show(&self) -> String;
}

macro_rules! from_str_setting {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            fn parse_setting(raw: &str) -> Result<Self, String> {
                raw.trim().parse::<$ty>().map_err(|e| e.to_string())
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
from_str_setting!(
    u16,
    u32,
    u64,
    usize,
    SocketAddr,
    LogFormat,
    SqliteSynchronous,
    Networks,
    Delays
);

impl SettingValue for bool {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for String {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingValue for PathBuf {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("a path must not be empty".into());
        }
        Ok(PathBuf::from(raw))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl SettingValue for SecretString {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(SecretString::from(raw.to_owned()))
    }
    fn show(&self) -> String {
        "(set, redacted)".into()
    }
}

/// Empty text means "not set".
impl<T: SettingValue> SettingValue for Option<T> {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            T::parse_setting(raw).map(Some)
        }
    }
    fn show(&self) -> String {
        match self {
            Some(value) => value.show(),
            None => "(not set)".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: invalid value for `{key}`: {message}")]
    Invalid {
        source_name: String,
        key: &'static str,
        message: String,
    },
    #[error("{file}: unknown setting `{key}` (run `plinth config` to list the settings)")]
    UnknownKey { file: String, key: String },
    #[error("cannot read configuration file {file}: {message}")]
    File { file: String, message: String },
}

/// Documentation of one setting, for `plinth config` and the README.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    pub key: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:literal, env $env:literal; )+) => {
        /// Resolved configuration. Secrets are `SecretString`, so `Debug` never shows them.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        /// One source's partial configuration.
        #[derive(Debug, Default, Clone)]
        pub struct ConfigLayer {
            $( pub $name: Option<$ty>, )+
        }

        pub const SETTINGS: &[SettingDoc] = &[
            $( SettingDoc {
                key: stringify!($name),
                env: $env,
                default: $default,
                doc: concat!($($doc),+),
            }, )+
        ];

        impl Config {
            pub fn defaults() -> Result<Self, ConfigError> {
                Ok(Self {
                    $( $name: <$ty as SettingValue>::parse_setting($default).map_err(|message| {
                        ConfigError::Invalid { source_name: "default".into(), key: stringify!($name), message }
                    })?, )+
                })
            }

            /// `(key, shown value)` for every setting, secrets redacted.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![ $( (stringify!($name), SettingValue::show(&self.$name)), )+ ]
            }
        }

        impl ConfigLayer {
            /// Sets one setting by key from text; used by the file and environment layers.
            pub fn set(&mut self, key: &str, raw: &str) -> Result<bool, String> {
                match key {
                    $( stringify!($name) => {
                        self.$name = Some(<$ty as SettingValue>::parse_setting(raw)?);
                        Ok(true)
                    } )+
                    _ => Ok(false),
                }
            }

            fn apply_to(self, config: &mut Config) {
                $( if let Some(value) = self.$name { config.$name = value; } )+
            }
        }
    };
}

settings! {
    /// Address and port the HTTP server listens on.
    bind: SocketAddr = "127.0.0.1:8080", env "PLINTH_BIND";
    /// Directory for the embedded database, keys and backups.
    data_dir: PathBuf = "./plinth-data", env "PLINTH_DATA_DIR";
    /// Database URL: `sqlite://PATH` or `postgres://…`. Unset: SQLite at `DATA_DIR/plinth.db`.
    database_url: Option<SecretString> = "", env "PLINTH_DATABASE_URL";
    /// Maximum pooled database connections (PostgreSQL pool; SQLite readers).
    database_max_connections: u32 = "16", env "PLINTH_DATABASE_MAX_CONNECTIONS";
    /// SQLite `synchronous` mode: `full` (every commit durable on power loss) or `normal`.
    sqlite_synchronous: SqliteSynchronous = "full", env "PLINTH_SQLITE_SYNCHRONOUS";
    /// Public base URL used in links (setup, e-mails), e.g. `https://id.example.com`. Unset: `http://BIND`.
    public_url: Option<String> = "", env "PLINTH_PUBLIC_URL";
    /// Log output: `pretty` or `json`.
    log_format: LogFormat = "pretty", env "PLINTH_LOG_FORMAT";
    /// Log filter in `tracing` syntax, e.g. `info` or `plinth_server=debug,info`.
    log_level: String = "info", env "PLINTH_LOG";
    /// Seconds before a request is answered with 408.
    request_timeout_secs: u64 = "30", env "PLINTH_REQUEST_TIMEOUT_SECS";
    /// Largest accepted request body in bytes.
    body_limit_bytes: usize = "1048576", env "PLINTH_BODY_LIMIT_BYTES";
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    shutdown_timeout_secs: u64 = "30", env "PLINTH_SHUTDOWN_TIMEOUT_SECS";
    /// Take the client address from `X-Forwarded-For` when the request comes through one of `trusted_proxies`.
    trust_proxy_headers: bool = "false", env "PLINTH_TRUST_PROXY_HEADERS";
    /// Networks of the reverse proxies whose `X-Forwarded-For` entries are believed (comma-separated CIDRs); the client is the right-most entry outside them.
    trusted_proxies: Networks = "127.0.0.0/8,::1/128", env "PLINTH_TRUSTED_PROXIES";
    /// Non-public networks webhook endpoints may reach anyway (comma-separated CIDRs). Unset: only public addresses, checked at every delivery.
    webhook_allowed_networks: Networks = "", env "PLINTH_WEBHOOK_ALLOWED_NETWORKS";
    /// Allow webhook endpoints over plain `http://` (development only); otherwise `https://` is required.
    webhook_allow_http: bool = "false", env "PLINTH_WEBHOOK_ALLOW_HTTP";
    /// Waits before each retry of a failed webhook delivery (`s`, `m`, `h` units; each give or take a tenth); after the last, the delivery goes to the dead-letter queue.
    webhook_retry_schedule: Delays = "5s,5m,30m,2h,5h,10h,14h", env "PLINTH_WEBHOOK_RETRY_SCHEDULE";
    /// Seconds a webhook endpoint has to answer; a slower answer is a failed attempt.
    webhook_timeout_secs: u64 = "10", env "PLINTH_WEBHOOK_TIMEOUT_SECS";
    /// Hours an endpoint may fail every attempt before it is disabled and the tenant's owners are e-mailed.
    webhook_disable_after_hours: u32 = "120", env "PLINTH_WEBHOOK_DISABLE_AFTER_HOURS";
    /// Days finished webhook deliveries (delivered or dead) and their attempts are kept.
    webhook_log_retention_days: u32 = "30", env "PLINTH_WEBHOOK_LOG_RETENTION_DAYS";
    /// Master key (base64, 32 bytes) encrypting secrets at rest. Unset: a key file in the data directory.
    master_key: Option<SecretString> = "", env "PLINTH_MASTER_KEY";
    /// SMTP server URL, e.g. `smtps://user:pass@mail.example.com`. Unset: e-mails go to the development outbox.
    smtp_url: Option<SecretString> = "", env "PLINTH_SMTP_URL";
    /// Sender address of e-mails.
    smtp_from: String = "Plinth <no-reply@localhost>", env "PLINTH_SMTP_FROM";
    /// NATS server URL (`nats://host:4222`, with `user:pass@` if it needs them): events are published to JetStream and every server's live streams follow it. Unset: an in-process bus (one server).
    nats_url: Option<SecretString> = "", env "PLINTH_NATS_URL";
    /// The JetStream stream events are kept in.
    nats_stream: String = "PLINTH_EVENTS", env "PLINTH_NATS_STREAM";
    /// The first token of every event's subject: `<prefix>.<tenant id or platform>.<event type>`.
    nats_subject_prefix: String = "plinth", env "PLINTH_NATS_SUBJECT_PREFIX";
    /// Allow self-service sign-up.
    signup_enabled: bool = "false", env "PLINTH_SIGNUP_ENABLED";
    /// Platform administrators must enrol a second factor before using admin routes.
    require_admin_mfa: bool = "true", env "PLINTH_REQUIRE_ADMIN_MFA";
    /// Lifetime of access tokens in seconds.
    access_token_ttl_secs: u64 = "600", env "PLINTH_ACCESS_TOKEN_TTL_SECS";
    /// Sliding lifetime of refresh tokens in days.
    refresh_token_ttl_days: u64 = "30", env "PLINTH_REFRESH_TOKEN_TTL_DAYS";
    /// Longest life of a console (cookie) session in hours, however active it is.
    console_session_hours: u64 = "12", env "PLINTH_CONSOLE_SESSION_HOURS";
    /// Minutes without a request after which a console session ends.
    console_idle_minutes: u64 = "60", env "PLINTH_CONSOLE_IDLE_MINUTES";
    /// Consecutive failed sign-ins that lock an account (for 1 min, doubling per further failure, at most 1 h).
    lockout_threshold: u32 = "5", env "PLINTH_LOCKOUT_THRESHOLD";
    /// Sign-in attempts per 15 minutes, per client address and per account.
    rate_limit_login: u32 = "10", env "PLINTH_RATE_LIMIT_LOGIN";
    /// Sign-ups per 15 minutes per client address.
    rate_limit_signup: u32 = "5", env "PLINTH_RATE_LIMIT_SIGNUP";
    /// Password-reset requests per 15 minutes, per client address and per account.
    rate_limit_forgot_password: u32 = "5", env "PLINTH_RATE_LIMIT_FORGOT_PASSWORD";
    /// Second-factor attempts per 15 minutes, per client address and per account.
    rate_limit_mfa: u32 = "5", env "PLINTH_RATE_LIMIT_MFA";
    /// Days between a tenant's deletion request and the purge of its data (it can be restored meanwhile).
    tenant_deletion_grace_days: u32 = "30", env "PLINTH_TENANT_DELETION_GRACE_DAYS";
    /// Days audit records are kept before pruning (under a signed checkpoint): the platform chain's, and each tenant's unless it chooses otherwise.
    audit_retention_days: u32 = "365", env "PLINTH_AUDIT_RETENTION_DAYS";
    /// The shortest audit retention a tenant may choose, in days.
    audit_retention_min_days: u32 = "30", env "PLINTH_AUDIT_RETENTION_MIN_DAYS";
    /// The longest audit retention a tenant may choose, in days.
    audit_retention_max_days: u32 = "3650", env "PLINTH_AUDIT_RETENTION_MAX_DAYS";
    /// Hours published events stay in the outbox: how far back `Last-Event-ID` can resume a live stream and the tenant's event list reaches.
    events_retention_hours: u32 = "72", env "PLINTH_EVENTS_RETENTION_HOURS";
    /// Seconds the oldest unpublished event may wait before `/readyz` reports the outbox stuck.
    events_stuck_after_secs: u32 = "60", env "PLINTH_EVENTS_STUCK_AFTER_SECS";
    /// Live event streams (`GET /api/v1/events/stream`) open at once per tenant on this server; one more is answered 429.
    events_streams_per_tenant: u32 = "50", env "PLINTH_EVENTS_STREAMS_PER_TENANT";
    /// Events a live stream may fall behind before it is ended with `event: overflow`.
    events_stream_buffer: u32 = "1024", env "PLINTH_EVENTS_STREAM_BUFFER";
}

/// A list of waits, written `5s,5m,2h` (a number alone is seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delays(pub Vec<std::time::Duration>);

impl std::str::FromStr for Delays {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut delays = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (number, unit) = match item.find(|c: char| !c.is_ascii_digit()) {
                Some(at) => item.split_at(at),
                None => (item, "s"),
            };
            let count: u64 = number
                .parse()
                .map_err(|_| format!("{item:?} is not a wait such as 30s, 5m or 2h"))?;
            let seconds = match unit {
                "s" => count,
                "m" => count.saturating_mul(60),
                "h" => count.saturating_mul(3600),
                _ => return Err(format!("{item:?}: the unit must be s, m or h")),
            };
            delays.push(std::time::Duration::from_secs(seconds));
        }
        if delays.len() > 20 {
            return Err(String::from("at most 20 waits"));
        }
        Ok(Delays(delays))
    }
}

impl std::fmt::Display for Delays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.0.iter().map(|d| format!("{}s", d.as_secs())).collect();
        f.write_str(&items.join(","))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected `pretty` or `json`, got {other:?}")),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl std::str::FromStr for SqliteSynchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteSynchronous::Full),
            "normal" => Ok(SqliteSynchronous::Normal),
            other => Err(format!("expected `full` or `normal`, got {other:?}")),
        }
    }
}

impl std::fmt::Display for SqliteSynchronous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SqliteSynchronous::Full => "full",
            SqliteSynchronous::Normal => "normal",
        })
    }
}

/// Where the configuration comes from; each source is optional.
pub struct ConfigSources<'a> {
    /// An explicit `--config FILE`; when `None`, `./plinth.toml` is read if it exists.
    pub file: Option<&'a Path>,
    /// Environment lookup (`std::env::var` in production, a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Values given as command-line flags.
    pub flags: ConfigLayer,
}

impl ConfigLayer {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut layer = ConfigLayer::default();
        for setting in SETTINGS {
            if let Some(raw) = env(setting.env) {
                layer.set(setting.key, &raw).map_err(|message| ConfigError::Invalid {
                    source_name: format!("environment variable {}", setting.env),
                    key: setting.key,
                    message,
                })?;
            }
        }
        Ok(layer)
    }

    pub fn from_toml(text: &str, file_name: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::File {
            file: file_name.into(),
            message: e.to_string(),
        })?;
        let mut layer = ConfigLayer::default();
        for (key, value) in table {
            let raw = match &value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(ConfigError::File {
                        file: file_name.into(),
                        message: format!("`{key}` must be a string, number or boolean, not {}", other.type_str()),
                    });
                }
            };
            let setting = SETTINGS
                .iter()
                .find(|s| s.key == key)
                .ok_or_else(|| ConfigError::UnknownKey {
                    file: file_name.into(),
                    key: key.clone(),
                })?;
            layer.set(setting.key, &raw).map_err(|message| ConfigError::Invalid {
                source_name: file_name.into(),
                key: setting.key,
                message,
            })?;
        }
        Ok(layer)
    }
}

impl Config {
    pub fn load(sources: ConfigSources<'_>) -> Result<Self, ConfigError> {
        let mut config = Config::defaults()?;
        let explicit = sources
            .file
            .map(Path::to_path_buf)
            .or_else(|| (sources.env)("PLINTH_CONFIG").map(PathBuf::from));
        let (path, required) = match explicit {
            Some(path) => (path, true),
            None => (PathBuf::from("plinth.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => ConfigLayer::from_toml(&text, &path.display().to_string())?.apply_to(&mut config),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(e) => {
                return Err(ConfigError::File {
                    file: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
        ConfigLayer::from_env(sources.env)?.apply_to(&mut config);
        sources.flags.apply_to(&mut config);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            source_name: "configuration".into(),
            key,
            message,
        };
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://".into(),
                ));
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("public_url", "must start with http:// or https://".into()));
        }
        if self.body_limit_bytes < 1024 {
            return Err(invalid("body_limit_bytes", "must be at least 1024".into()));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1".into()));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1".into()));
        }
        if self.audit_retention_min_days == 0
            || self.audit_retention_min_days > self.audit_retention_days
            || self.audit_retention_days > self.audit_retention_max_days
        {
            return Err(invalid(
                "audit_retention_days",
                format!(
                    "needs 1 <= audit_retention_min_days ({}) <= audit_retention_days ({}) <= audit_retention_max_days ({})",
                    self.audit_retention_min_days, self.audit_retention_days, self.audit_retention_max_days
                ),
            ));
        }
        if self.events_retention_hours == 0 {
            return Err(invalid("events_retention_hours", "must be at least 1".into()));
        }
        if self.events_stream_buffer == 0 || self.events_stream_buffer > 1_000_000 {
            return Err(invalid("events_stream_buffer", "must be between 1 and 1000000".into()));
        }
        let name_chars = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name_chars(&self.nats_stream) {
            return Err(invalid(
                "nats_stream",
                "a stream name is 1 to 64 letters, digits, - or _".into(),
            ));
        }
        if !name_chars(&self.nats_subject_prefix) {
            return Err(invalid(
                "nats_subject_prefix",
                "a subject prefix is one token: 1 to 64 letters, digits, - or _".into(),
            ));
        }
        Ok(())
    }

    /// The base URL for links shown to people, without a trailing slash.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// Whether the server is reached over TLS (decides HSTS and `Secure` cookies).
    pub fn behind_tls(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn delays_read_units_and_refuse_the_rest() {
        let parsed: Delays = "5s, 5m,2h,7".parse().unwrap();
        assert_eq!(
            parsed.0.iter().map(|d| d.as_secs()).collect::<Vec<_>>(),
            [5, 300, 7200, 7]
        );
        assert_eq!(parsed.to_string(), "5s,300s,7200s,7s");
        assert!("".parse::<Delays>().unwrap().0.is_empty());
        for bad in ["5d", "x", "-1s", "1.5h"] {
            assert!(bad.parse::<Delays>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_need_nothing() {
        let config = Config::defaults().unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./plinth-data"));
        assert!(config.database_url.is_none());
    }

    #[test]
    fn every_setting_has_a_plinth_env_var() {
        for s in SETTINGS {
            assert!(s.env.starts_with("PLINTH_"), "{} has env {}", s.key, s.env);
        }
    }

    #[test]
    fn flags_beat_env_which_beats_file() {
        let dir = tempfile_dir();
        let file = dir.join("plinth.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:1111\"\nlog_level = \"debug\"\nbody_limit_bytes = 4096\n",
        )
        .unwrap();
        let env = env_of(&[("PLINTH_BIND", "127.0.0.1:2222"), ("PLINTH_LOG", "warn")]);
        let mut flags = ConfigLayer::default();
        flags.set("bind", "127.0.0.1:3333").unwrap();
        let config = Config::load(ConfigSources {
            file: Some(&file),
            env: &env,
            flags,
        })
        .unwrap();
        assert_eq!(config.bind.port(), 3333);
        assert_eq!(config.log_level, "warn");
        assert_eq!(config.body_limit_bytes, 4096);
    }

    #[test]
    fn unknown_file_keys_and_bad_env_values_are_refused_with_their_source() {
        let err = ConfigLayer::from_toml("bnid = \"x\"", "plinth.toml").unwrap_err();
        assert!(err.to_string().contains("unknown setting `bnid`"), "{err}");
        let env = env_of(&[("PLINTH_BIND", "not an address")]);
        let err = ConfigLayer::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("PLINTH_BIND"), "{err}");
    }

    #[test]
    fn a_subject_prefix_that_is_not_one_token_is_refused() {
        for prefix in ["a.b", "events.>", "with space", ""] {
            let pairs = [("PLINTH_NATS_SUBJECT_PREFIX", prefix)];
            let env = env_of(&pairs);
            let error = Config::load(ConfigSources {
                file: None,
                env: &env,
                flags: ConfigLayer::default(),
            })
            .unwrap_err()
            .to_string();
            assert!(error.contains("nats_subject_prefix"), "{prefix}: {error}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_describe() {
        let env = env_of(&[("PLINTH_DATABASE_URL", "postgres://u:hunter2@db/x")]);
        let config = Config::load(ConfigSources {
            file: Some(Path::new("/nonexistent-but-explicit.toml")),
            env: &env,
            flags: ConfigLayer::default(),
        });
        assert!(config.is_err(), "an explicit missing file is an error");
        let mut config = Config::defaults().unwrap();
        ConfigLayer::from_env(&env).unwrap().apply_to(&mut config);
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.describe()).contains("hunter2"));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plinth-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
