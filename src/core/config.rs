//! Client configuration: regions, base URLs, credentials and tuning, validated.
//!
//! The glue reads each option from the JS object by name and type, so a wrong type is
//! reported per field (`timeoutMs must be a number`) without echoing the value; here
//! the values are checked for meaning.

use super::error::VccError;
use super::retry::RetryPolicy;
use super::secret::ClientSecret;
use super::token::Margins;
use super::url::BaseUrl;

/// The VCC regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Europe, Middle East, Africa.
    Emea,
    /// North America.
    Nam,
    /// Asia-Pacific.
    Apac,
}

impl Region {
    /// Every region, for [`Region::parse`].
    pub const ALL: [Region; 3] = [Self::Emea, Self::Nam, Self::Apac];

    /// Parses a region's subdomain, any case: the inverse of [`Region::as_str`], so the
    /// two never drift apart.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s))
    }

    /// The region's subdomain.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emea => "emea",
            Self::Nam => "nam",
            Self::Apac => "apac",
        }
    }

    /// `https://{region}.cc.vonage.com`, home of the token endpoint.
    pub fn auth_base(self) -> String {
        let mut s = String::from("https://");
        s.push_str(self.as_str());
        s.push_str(".cc.vonage.com");
        s
    }

    /// `https://{region}.api.cc.vonage.com`, root of the APIs.
    pub fn api_base(self) -> String {
        let mut s = String::from("https://");
        s.push_str(self.as_str());
        s.push_str(".api.cc.vonage.com");
        s
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (what VCC's guide shows).
    Post,
    /// HTTP Basic with the form-urlencoded id and secret (older samples).
    Basic,
}

/// The option names the JS constructor accepts; anything else is a typo we report.
pub const OPTION_NAMES: &[&str] = &[
    "region",
    "clientId",
    "clientSecret",
    "authBaseUrl",
    "apiBaseUrl",
    "clientAuth",
    "timeoutMs",
    "refreshAheadMs",
    "expiryMarginMs",
    "maxRetries",
    "autoRefresh",
    "onEvent",
    "store",
];

/// Options as read from JS, not yet validated.
#[derive(Debug, Default)]
pub struct RawConfig {
    /// `emea` | `nam` | `apac`.
    pub region: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret.
    pub client_secret: Option<ClientSecret>,
    /// Override of the token endpoint's base URL.
    pub auth_base_url: Option<String>,
    /// Override of the API base URL.
    pub api_base_url: Option<String>,
    /// `post` | `basic`.
    pub client_auth: Option<String>,
    /// Per-request timeout.
    pub timeout_ms: Option<f64>,
    /// Cap of the refresh-ahead window.
    pub refresh_ahead_ms: Option<f64>,
    /// Cap of the hard expiry margin.
    pub expiry_margin_ms: Option<f64>,
    /// Retries for token requests.
    pub max_retries: Option<f64>,
    /// Proactive refresh timers.
    pub auto_refresh: Option<bool>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    /// Base of the token endpoint.
    pub auth_base: BaseUrl,
    /// Base of the APIs.
    pub api_base: BaseUrl,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: ClientSecret,
    /// How to send the credentials.
    pub client_auth: ClientAuth,
    /// Per-request timeout in ms.
    pub timeout_ms: u32,
    /// Refresh margins.
    pub margins: Margins,
    /// Token request retries.
    pub retry: RetryPolicy,
    /// `None` = the platform default (on in browsers and Node, off in workerd).
    pub auto_refresh: Option<bool>,
}

/// The token endpoint's path under the auth base URL.
pub const TOKEN_PATH: &str = "/Auth/connect/token";

impl Settings {
    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        self.auth_base.join(TOKEN_PATH)
    }
}

/// An option that is missing or invalid: which one, and what is wrong with it (never its
/// value). The gateway maps `field` to its setting; JS gets it as `error.field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The option's name, e.g. `timeoutMs`.
    pub field: &'static str,
    /// What is wrong, e.g. `is out of range`.
    pub problem: &'static str,
}

fn bad(field: &'static str, problem: &'static str) -> ConfigError {
    ConfigError { field, problem }
}

impl From<ConfigError> for VccError {
    fn from(e: ConfigError) -> Self {
        VccError::config(e.field, e.problem)
    }
}

fn ms(field: &'static str, v: Option<f64>, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x.fract() == 0.0 && x >= min as f64 && x <= max as f64 => Ok(x as u64),
        Some(_) => Err(bad(field, "is out of range")),
    }
}

impl RawConfig {
    /// Validates everything; the first problem is reported, naming its field.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let region = match self.region.as_deref() {
            Some(r) => Some(Region::parse(r).ok_or_else(|| bad("region", "must be \"emea\", \"nam\" or \"apac\""))?),
            None => None,
        };
        let base = |field: &'static str,
                    given: Option<String>,
                    from_region: fn(Region) -> String|
         -> Result<BaseUrl, ConfigError> {
            let url = match (given, region) {
                (Some(u), _) => u,
                (None, Some(r)) => from_region(r),
                (None, None) => return Err(bad("region", "is required (or give both authBaseUrl and apiBaseUrl)")),
            };
            BaseUrl::parse(&url).map_err(|problem| bad(field, problem))
        };
        let auth_base = base("authBaseUrl", self.auth_base_url, Region::auth_base)?;
        let api_base = base("apiBaseUrl", self.api_base_url, Region::api_base)?;
        let client_id =
            self.client_id.filter(|s| !s.trim().is_empty()).ok_or_else(|| bad("clientId", "is required"))?;
        if client_id.chars().any(char::is_control) {
            return Err(bad("clientId", "must not contain control characters"));
        }
        let client_secret =
            self.client_secret.filter(|s| !s.is_empty()).ok_or_else(|| bad("clientSecret", "is required"))?;
        let client_auth = match self.client_auth.as_deref() {
            None | Some("post") => ClientAuth::Post,
            Some("basic") => ClientAuth::Basic,
            Some(_) => return Err(bad("clientAuth", "must be \"post\" or \"basic\"")),
        };
        let defaults = Margins::default();
        Ok(Settings {
            auth_base,
            api_base,
            client_id,
            client_secret,
            client_auth,
            timeout_ms: ms("timeoutMs", self.timeout_ms, 10_000, 1, 600_000)? as u32,
            margins: Margins {
                hard_cap_ms: ms("expiryMarginMs", self.expiry_margin_ms, defaults.hard_cap_ms, 0, 3_600_000)?,
                soft_cap_ms: ms("refreshAheadMs", self.refresh_ahead_ms, defaults.soft_cap_ms, 0, 3_600_000)?,
            },
            retry: RetryPolicy {
                max_retries: ms("maxRetries", self.max_retries, 3, 0, 10)? as u32,
                ..RetryPolicy::default()
            },
            auto_refresh: self.auto_refresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorCode;

    fn raw() -> RawConfig {
        RawConfig {
            region: Some("emea".into()),
            client_id: Some("id".into()),
            client_secret: Some(ClientSecret::new("top-secret-value".into())),
            ..RawConfig::default()
        }
    }

    fn field_error(r: RawConfig) -> String {
        let e: VccError = r.validate().unwrap_err().into();
        assert_eq!(e.code, ErrorCode::InvalidConfig);
        assert!(e.message.starts_with(e.field.expect("a config error names its field")), "{e:?}");
        assert!(!e.to_string().contains("top-secret-value"));
        assert!(!format!("{e:?}").contains("top-secret-value"));
        e.to_string()
    }

    #[test]
    fn region_gives_both_base_urls() {
        let s = raw().validate().unwrap();
        assert_eq!(s.token_url(), "https://emea.cc.vonage.com/Auth/connect/token");
        assert_eq!(s.api_base.as_string(), "https://emea.api.cc.vonage.com");
        assert_eq!(s.client_auth, ClientAuth::Post);
        assert_eq!(s.timeout_ms, 10_000);
        for (r, host) in [("NAM", "nam"), ("apac", "apac")] {
            let s = RawConfig { region: Some(r.into()), ..raw() }.validate().unwrap();
            assert!(s.api_base.as_string().contains(host));
        }
    }

    #[test]
    fn overrides_replace_region_urls() {
        let s = RawConfig {
            region: None,
            auth_base_url: Some("http://127.0.0.1:4010".into()),
            api_base_url: Some("http://localhost:4010/api".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(s.token_url(), "http://127.0.0.1:4010/Auth/connect/token");
        assert_eq!(s.api_base.join("/stats"), "http://localhost:4010/api/stats");
    }

    #[test]
    fn every_bad_field_is_named_and_no_secret_is_shown() {
        assert!(field_error(RawConfig { region: Some("mars".into()), ..raw() }).starts_with("region"));
        assert!(field_error(RawConfig { region: None, ..raw() }).starts_with("region"));
        assert!(field_error(RawConfig { client_id: None, ..raw() }).starts_with("clientId"));
        assert!(field_error(RawConfig { client_id: Some("  ".into()), ..raw() }).starts_with("clientId"));
        assert!(field_error(RawConfig { client_secret: None, ..raw() }).starts_with("clientSecret"));
        assert!(field_error(RawConfig { client_secret: Some(ClientSecret::new(String::new())), ..raw() })
            .starts_with("clientSecret"));
        assert!(field_error(RawConfig { auth_base_url: Some("http://evil.example".into()), ..raw() })
            .starts_with("authBaseUrl"));
        assert!(field_error(RawConfig { api_base_url: Some("https://a@b".into()), ..raw() }).starts_with("apiBaseUrl"));
        assert!(field_error(RawConfig { client_auth: Some("jwt".into()), ..raw() }).starts_with("clientAuth"));
        assert!(field_error(RawConfig { timeout_ms: Some(0.0), ..raw() }).starts_with("timeoutMs"));
        assert!(field_error(RawConfig { timeout_ms: Some(1.5), ..raw() }).starts_with("timeoutMs"));
        assert!(field_error(RawConfig { max_retries: Some(11.0), ..raw() }).starts_with("maxRetries"));
        assert!(field_error(RawConfig { refresh_ahead_ms: Some(-1.0), ..raw() }).starts_with("refreshAheadMs"));
    }

    #[test]
    fn settings_debug_does_not_show_the_secret() {
        let s = raw().validate().unwrap();
        assert!(!format!("{s:?}").contains("top-secret-value"));
    }
}
