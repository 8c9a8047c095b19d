//! The gateway's settings: read from the Worker's `env` as text, validated once per
//! isolate. A bad one names its setting (never its value) in [`Misconfigured`].

use super::keys::{digest, Grant};
use crate::core::config::{RawConfig, Settings};
use crate::core::scope::ScopeSet;
use crate::core::secret::ClientSecret;
use crate::core::url::BaseUrl;

/// Gateway keys shorter than this are refused as guessable.
pub const MIN_KEY_LEN: usize = 16;

/// `GATEWAY_KEYS` as the host's JSON parser read it: gateway key -> scopes, or `Err`
/// when it is not a JSON object of string arrays.
pub type ParsedKeys = Result<Vec<(String, Vec<String>)>, ()>;

/// The gateway's settings as read from the Worker's `env`, not yet validated.
#[derive(Debug, Default)]
pub struct GatewayEnv {
    /// `VCC_REGION`.
    pub region: Option<String>,
    /// `VCC_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `VCC_CLIENT_SECRET` (a Worker secret).
    pub client_secret: Option<ClientSecret>,
    /// `VCC_AUTH_BASE_URL`.
    pub auth_base_url: Option<String>,
    /// `VCC_API_BASE_URL`.
    pub api_base_url: Option<String>,
    /// `ALLOWED_ORIGINS`, comma-separated.
    pub allowed_origins: Option<String>,
    /// `GATEWAY_KEYS`; `None` when unset.
    pub gateway_keys: Option<ParsedKeys>,
    /// `UPSTREAM_TIMEOUT_MS` (default 30000).
    pub upstream_timeout_ms: Option<String>,
    /// `BODY_TIMEOUT_MS` (default 10000).
    pub body_timeout_ms: Option<String>,
}

/// A setting that is missing or invalid: every request gets 500 naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misconfigured {
    /// The setting's name, e.g. `VCC_CLIENT_ID`.
    pub setting: &'static str,
    /// What is wrong (never the value).
    pub problem: std::borrow::Cow<'static, str>,
}

impl Misconfigured {
    /// `SETTING problem`.
    pub fn message(&self) -> String {
        let mut m = String::from(self.setting);
        m.push(' ');
        m.push_str(&self.problem);
        m
    }
}

/// Validated gateway settings.
pub struct GatewayConfig {
    /// Token client settings (region or base URLs, client id and secret).
    pub settings: Settings,
    pub(super) grants: Vec<Grant>,
    pub(super) allowed_origins: Vec<String>,
    /// How long one exchange with VCC may take, from sending the request to the last byte
    /// of its answer: 504 if no answer came by then, a cut-off body if it was streaming.
    pub upstream_timeout_ms: u32,
    /// How long a caller may take to send its request body: 408 past it.
    pub body_timeout_ms: u32,
}

impl core::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("settings", &self.settings)
            .field("keys", &self.grants.len())
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

fn bad(setting: &'static str, problem: &'static str) -> Misconfigured {
    Misconfigured { setting, problem: problem.into() }
}

/// The gateway setting that feeds a token-client option. The gateway sets only these
/// five options (and `autoRefresh`, which cannot fail), so any other field is named as
/// itself rather than blamed on a setting that did not cause it.
fn setting_of(field: &'static str) -> &'static str {
    match field {
        "region" => "VCC_REGION",
        "clientId" => "VCC_CLIENT_ID",
        "clientSecret" => "VCC_CLIENT_SECRET",
        "authBaseUrl" => "VCC_AUTH_BASE_URL",
        "apiBaseUrl" => "VCC_API_BASE_URL",
        other => other,
    }
}

/// A timeout setting: whole milliseconds from 1 to 120000, or `default` when unset.
fn millis(setting: &'static str, value: Option<&str>, default: u32) -> Result<u32, Misconfigured> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=120_000).contains(n))
            .ok_or_else(|| bad(setting, "must be a number of milliseconds from 1 to 120000")),
    }
}

impl GatewayEnv {
    /// Validates every setting; the first problem names its setting.
    pub fn validate(self) -> Result<GatewayConfig, Misconfigured> {
        let raw = RawConfig {
            region: self.region,
            client_id: self.client_id,
            client_secret: self.client_secret,
            auth_base_url: self.auth_base_url,
            api_base_url: self.api_base_url,
            // workerd: no timers doing I/O outside a request; refresh-ahead is lazy.
            auto_refresh: Some(false),
            ..RawConfig::default()
        };
        let settings =
            raw.validate().map_err(|e| Misconfigured { setting: setting_of(e.field), problem: e.problem.into() })?;
        let keys = match self.gateway_keys {
            None => return Err(bad("GATEWAY_KEYS", "is required (a JSON object: gateway key -> list of scopes)")),
            Some(Err(())) => return Err(bad("GATEWAY_KEYS", "must be a JSON object: gateway key -> list of scopes")),
            Some(Ok(k)) => k,
        };
        if keys.is_empty() {
            return Err(bad("GATEWAY_KEYS", "has no keys"));
        }
        let mut grants = Vec::with_capacity(keys.len());
        for (key, scopes) in keys {
            if key.chars().count() < MIN_KEY_LEN || key.chars().any(|c| c.is_control() || c == ' ') {
                return Err(bad("GATEWAY_KEYS", "has a key shorter than 16 characters or with spaces"));
            }
            if scopes.is_empty() {
                return Err(bad("GATEWAY_KEYS", "has a key with no scopes"));
            }
            if scopes.iter().any(|s| s != "*" && ScopeSet::parse(s).map(|p| p.as_str() != s).unwrap_or(true)) {
                return Err(bad("GATEWAY_KEYS", "has an invalid scope (one scope per entry, or \"*\")"));
            }
            let key = ClientSecret::new(key);
            grants.push(Grant { digest: digest(key.expose()), scopes });
        }
        let mut allowed_origins = Vec::new();
        for o in self.allowed_origins.as_deref().unwrap_or("").split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match BaseUrl::parse_origin(o) {
                Ok(b) => allowed_origins.push(b.origin()),
                _ => {
                    return Err(bad(
                        "ALLOWED_ORIGINS",
                        "must be comma-separated origins like https://admin.example.com",
                    ))
                }
            }
        }
        let upstream_timeout_ms = millis("UPSTREAM_TIMEOUT_MS", self.upstream_timeout_ms.as_deref(), 30_000)?;
        let body_timeout_ms = millis("BODY_TIMEOUT_MS", self.body_timeout_ms.as_deref(), 10_000)?;
        Ok(GatewayConfig { settings, grants, allowed_origins, upstream_timeout_ms, body_timeout_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gateway::fixtures::*;

    #[test]
    fn misconfiguration_names_the_setting_never_the_value() {
        let cases: Vec<(GatewayEnv, &str)> = vec![
            (GatewayEnv { client_id: None, ..env() }, "VCC_CLIENT_ID"),
            (GatewayEnv { client_secret: None, ..env() }, "VCC_CLIENT_SECRET"),
            (GatewayEnv { region: Some("mars".into()), ..env() }, "VCC_REGION"),
            (GatewayEnv { region: None, ..env() }, "VCC_REGION"),
            (GatewayEnv { api_base_url: Some("http://evil.example".into()), ..env() }, "VCC_API_BASE_URL"),
            (GatewayEnv { auth_base_url: Some("ftp://x".into()), ..env() }, "VCC_AUTH_BASE_URL"),
            (GatewayEnv { gateway_keys: None, ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Err(())), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![])), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![("short".into(), vec!["*".into()])])), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![(KEY_ALL.into(), vec![])])), ..env() }, "GATEWAY_KEYS"),
            (
                GatewayEnv { gateway_keys: Some(Ok(vec![(KEY_ALL.into(), vec!["Stats".into()])])), ..env() },
                "GATEWAY_KEYS",
            ),
            (GatewayEnv { allowed_origins: Some("https://a.example/path".into()), ..env() }, "ALLOWED_ORIGINS"),
            (GatewayEnv { allowed_origins: Some("*".into()), ..env() }, "ALLOWED_ORIGINS"),
            (GatewayEnv { upstream_timeout_ms: Some("soon".into()), ..env() }, "UPSTREAM_TIMEOUT_MS"),
            (GatewayEnv { upstream_timeout_ms: Some("0".into()), ..env() }, "UPSTREAM_TIMEOUT_MS"),
            (GatewayEnv { body_timeout_ms: Some("120001".into()), ..env() }, "BODY_TIMEOUT_MS"),
        ];
        for (e, setting) in cases {
            let m = e.validate().unwrap_err();
            assert_eq!(m.setting, setting);
            let text = format!("{} {:?}", m.message(), m);
            assert!(!m.problem.is_empty());
            assert!(
                !text.contains("gateway-secret-value") && !text.contains(KEY_ALL) && !text.contains("mars"),
                "{text}"
            );
        }
        let dbg = format!("{:?}", cfg());
        assert!(!dbg.contains(KEY_ALL) && !dbg.contains("gateway-secret-value"), "{dbg}");
    }
}
