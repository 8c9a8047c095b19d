//! Token endpoint answers, expiry math and API 401 classification.
//!
//! JSON text is parsed by the caller (natively with serde_json in tests, in wasm with the
//! host's `JSON.parse` + serde-wasm-bindgen, which keeps a JSON parser out of the wasm),
//! into [`OAuthBody`]; everything after that is decided here.

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};

use super::error::{ErrorCode, VccError};
use super::secret::AccessToken;

/// The fields of a token-endpoint or API error body we look at. Every field is lenient:
/// a field of an unexpected type reads as absent instead of failing the whole body, so
/// a 5xx with `{"error": 500}` still classifies by status.
#[derive(Debug, Default, Deserialize)]
pub struct OAuthBody {
    /// The token, on success.
    #[serde(default, deserialize_with = "lenient_string")]
    pub access_token: Option<String>,
    /// Lifetime in seconds (number, or a numeric string from lax servers).
    #[serde(default, deserialize_with = "lenient_number")]
    pub expires_in: Option<f64>,
    /// `Bearer` or `bearer`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub token_type: Option<String>,
    /// RFC 6749 error code.
    #[serde(default, deserialize_with = "lenient_string")]
    pub error: Option<String>,
    /// RFC 6749 error description.
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_description: Option<String>,
    /// VCC's other error shape: `{"message": "..."}`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
}

/// The JWT claims we use. Only `exp`; the signature is not checked (we are the client,
/// not the resource server; `exp` only ever shortens the cache lifetime).
#[derive(Debug, Default, Deserialize)]
pub struct JwtClaims {
    /// Expiry, seconds since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_number")]
    pub exp: Option<f64>,
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
            f.write_str("any value")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
            f.write_str("any value")
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse::<f64>().ok())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Longest lifetime we believe (a day). Guards the arithmetic against absurd values.
pub const MAX_LIFETIME_MS: u64 = 24 * 3600 * 1000;

/// A token and its timeline, all in milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub value: AccessToken,
    /// When we asked for it (taken before sending: the safe side of the lifetime).
    pub obtained_at: u64,
    /// When it stops working.
    pub expires_at: u64,
}

impl Token {
    /// Lifetime as seen by us.
    pub fn lifetime(&self) -> u64 {
        self.expires_at.saturating_sub(self.obtained_at)
    }
}

/// Refresh margins. The fractions make short-lived tokens work (a 5 s token refreshes
/// 2.5 s in, hard-expires 0.5 s early); the caps keep 2 h tokens from refreshing every
/// hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Margins {
    /// Cap of the hard margin (default 60 s); the hard margin is min(cap, 10 % lifetime).
    pub hard_cap_ms: u64,
    /// Cap of the refresh-ahead window (default 5 min); min(cap, 50 % lifetime).
    pub soft_cap_ms: u64,
}

impl Default for Margins {
    fn default() -> Self {
        Self { hard_cap_ms: 60_000, soft_cap_ms: 300_000 }
    }
}

/// Where a token stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Use it, nothing to do.
    Fresh,
    /// Use it, and start one background refresh.
    RefreshAhead,
    /// Inside the hard margin: wait for a new one (fall back to it if that fails).
    MustRefresh,
    /// Past its expiry: unusable.
    Expired,
}

impl Margins {
    /// The hard margin for a lifetime.
    pub fn hard(&self, lifetime: u64) -> u64 {
        self.hard_cap_ms.min(lifetime / 10)
    }

    /// The refresh-ahead window for a lifetime (never shorter than the hard margin).
    pub fn soft(&self, lifetime: u64) -> u64 {
        self.soft_cap_ms.min(lifetime / 2).max(self.hard(lifetime))
    }

    /// When a proactive refresh should start.
    pub fn refresh_at(&self, t: &Token) -> u64 {
        t.expires_at - self.soft(t.lifetime())
    }

    /// When callers stop accepting it without a refresh.
    pub fn stale_at(&self, t: &Token) -> u64 {
        t.expires_at - self.hard(t.lifetime())
    }

    /// Classifies `t` at `now`.
    pub fn freshness(&self, t: &Token, now: u64) -> Freshness {
        if now >= t.expires_at {
            Freshness::Expired
        } else if now >= self.stale_at(t) {
            Freshness::MustRefresh
        } else if now >= self.refresh_at(t) {
            Freshness::RefreshAhead
        } else {
            Freshness::Fresh
        }
    }
}

/// The `exp` claim of a JWT's payload segment, decoded (base64url) but not parsed: the
/// caller parses the JSON with whatever parser its platform has.
pub fn jwt_payload(token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
}

/// Expiry from `expires_in` (seconds from `requested_at`) and the JWT `exp` (seconds
/// since the epoch), taking the earlier. An `exp` at or before `requested_at` means the
/// clocks disagree (the server just issued it), so it is ignored rather than making
/// every token look expired, which would refetch on every call.
pub fn compute_expiry(requested_at: u64, expires_in_s: Option<f64>, jwt_exp_s: Option<f64>) -> Option<u64> {
    let from_expires_in = expires_in_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| requested_at + ((s * 1000.0) as u64).min(MAX_LIFETIME_MS));
    let from_jwt = jwt_exp_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1000.0) as u64)
        .filter(|ms| *ms > requested_at)
        .map(|ms| ms.min(requested_at + MAX_LIFETIME_MS));
    match (from_expires_in, from_jwt) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What one token request came to.
#[derive(Debug)]
pub enum TokenAnswer {
    /// A usable token.
    Token(Token),
    /// A failure; `retryable` for network errors, 5xx and 429.
    Failed {
        /// The error to surface if no retry helps.
        error: VccError,
        /// Whether another attempt may succeed.
        retryable: bool,
    },
}

/// Interprets a token-endpoint answer. `body` is `None` when the body was not JSON.
/// `jwt_exp` is the `exp` claim the caller extracted from the token, if any.
pub fn interpret_token_response(
    status: u16,
    body: Option<OAuthBody>,
    jwt_exp: impl FnOnce(&str) -> Option<f64>,
    retry_after_ms: Option<u64>,
    requested_at: u64,
) -> TokenAnswer {
    let fail = |error: VccError, retryable| TokenAnswer::Failed { error: error.with_status(status), retryable };
    if status == 200 {
        let Some(body) = body else {
            return fail(bad_response("the token endpoint answered 200 with a body that is not JSON"), false);
        };
        let Some(token) = body.access_token.filter(|t| !t.is_empty()) else {
            return fail(bad_response("the token endpoint's answer has no access_token"), false);
        };
        let token = AccessToken::new(token);
        match body.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(_) => return fail(bad_response("the token endpoint returned a token_type other than Bearer"), false),
            None => return fail(bad_response("the token endpoint's answer has no token_type"), false),
        }
        let exp = jwt_exp(token.expose());
        let Some(expires_at) = compute_expiry(requested_at, body.expires_in, exp) else {
            return fail(bad_response("the token endpoint's answer has no usable expires_in or JWT exp"), false);
        };
        return TokenAnswer::Token(Token { value: token, obtained_at: requested_at, expires_at });
    }
    if status == 429 {
        let mut e = VccError::new(ErrorCode::RateLimited, "the token endpoint is rate limiting (HTTP 429)");
        e.retry_after_ms = retry_after_ms;
        return fail(e, true);
    }
    if status >= 500 {
        let mut m = String::from("the token endpoint failed (HTTP ");
        super::url::push_u16(&mut m, status);
        m.push(')');
        return fail(VccError::new(ErrorCode::TokenEndpoint, m), true);
    }
    let body = body.unwrap_or_default();
    let described = |prefix: &'static str| -> Cow<'static, str> {
        match body.error_description.as_deref().map(sanitize_description) {
            Some(d) if !d.is_empty() => {
                let mut m = String::from(prefix);
                m.push_str(": ");
                m.push_str(&d);
                Cow::Owned(m)
            }
            _ => Cow::Borrowed(prefix),
        }
    };
    let (code, message) = match body.error.as_deref() {
        Some("invalid_client") => (
            ErrorCode::InvalidClient,
            described("the token endpoint rejected the client id or secret (invalid_client)"),
        ),
        Some("invalid_scope") => {
            (ErrorCode::InvalidScope, described("the token endpoint rejected the scope (invalid_scope)"))
        }
        Some("unsupported_grant_type") => {
            (ErrorCode::UnsupportedGrantType, described("the token endpoint does not support this grant type"))
        }
        Some("invalid_request") => {
            (ErrorCode::InvalidRequest, described("the token endpoint says the request is malformed (invalid_request)"))
        }
        None if status == 401 => {
            (ErrorCode::InvalidClient, Cow::Borrowed("the token endpoint rejected the client credentials (HTTP 401)"))
        }
        _ => {
            let mut m = String::from("the token endpoint refused the request (HTTP ");
            super::url::push_u16(&mut m, status);
            m.push(')');
            (ErrorCode::TokenEndpoint, Cow::Owned(m))
        }
    };
    fail(VccError::new(code, message), false)
}

fn bad_response(m: &'static str) -> VccError {
    VccError::new(ErrorCode::BadResponse, m)
}

/// Server text is shown to users: keep it short and printable.
fn sanitize_description(d: &str) -> String {
    d.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// How an API 401 should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api401 {
    /// Expired or invalid token: a new token can cure it (refresh + one retry).
    InvalidToken,
    /// Missing scope, missing token, anything else: a new token will not help.
    Other,
}

/// Classifies an API 401 by its body and `WWW-Authenticate` header. Only VCC's
/// "invalid or has expired" answer is cured by a new token; `{"message":"Unauthorized"}`
/// (scope missing) must not loop.
pub fn classify_401(www_authenticate: Option<&str>, body: Option<&OAuthBody>) -> Api401 {
    let header_says = www_authenticate.is_some_and(|h| h.to_ascii_lowercase().contains("error=\"invalid_token\""));
    let body_says = body.is_some_and(|b| {
        b.error.as_deref() == Some("invalid_token")
            || b.error_description.as_deref().is_some_and(|d| d.contains("invalid or has expired"))
    });
    if header_says || body_says {
        Api401::InvalidToken
    } else {
        Api401::Other
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date, in milliseconds from `now`.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(|s| s.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(at_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Option<OAuthBody> {
        serde_json::from_str(json).ok()
    }

    fn no_jwt(_: &str) -> Option<f64> {
        None
    }

    fn err(status: u16, json: &str) -> (ErrorCode, String, bool) {
        match interpret_token_response(status, body(json), no_jwt, None, 0) {
            TokenAnswer::Failed { error, retryable } => (error.code, error.to_string(), retryable),
            TokenAnswer::Token(_) => panic!("expected failure"),
        }
    }

    #[test]
    fn parses_success_with_either_token_type_case() {
        for tt in ["Bearer", "bearer", "BEARER"] {
            let json = format!(r#"{{"access_token":"eyJ.x.y","expires_in":7200,"token_type":"{tt}"}}"#);
            match interpret_token_response(200, body(&json), no_jwt, None, 1_000) {
                TokenAnswer::Token(t) => {
                    assert_eq!(t.value.expose(), "eyJ.x.y");
                    assert_eq!(t.obtained_at, 1_000);
                    assert_eq!(t.expires_at, 1_000 + 7_200_000);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn every_documented_error_body_maps_to_its_code() {
        assert_eq!(err(400, r#"{"error":"invalid_client"}"#).0, ErrorCode::InvalidClient);
        let (c, m, r) = err(400, r#"{"error":"invalid_scope","error_description":"You must specify a scope"}"#);
        assert_eq!(c, ErrorCode::InvalidScope);
        assert!(m.contains("You must specify a scope"));
        assert!(!r);
        let (c, m, _) = err(400, r#"{"error":"invalid_scope","error_description":"\"x\" is an invalid scope"}"#);
        assert_eq!(c, ErrorCode::InvalidScope);
        assert!(m.contains("\"x\" is an invalid scope"));
        assert_eq!(
            err(400, r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type"}"#).0,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(err(400, r#"{"error":"invalid_request"}"#).0, ErrorCode::InvalidRequest);
        assert_eq!(err(400, r#"{"error":"something_else"}"#).0, ErrorCode::TokenEndpoint);
        assert_eq!(err(401, "").0, ErrorCode::InvalidClient);
        let (c, _, r) = err(500, r#"{"error":"Internal Server Error","error_description":"boom"}"#);
        assert_eq!((c, r), (ErrorCode::TokenEndpoint, true));
        let (c, _, r) = err(503, r#"{"message":"down"}"#);
        assert_eq!((c, r), (ErrorCode::TokenEndpoint, true));
        let (c, _, r) = err(429, "{}");
        assert_eq!((c, r), (ErrorCode::RateLimited, true));
        let (c, _, r) = err(404, "not json");
        assert_eq!((c, r), (ErrorCode::TokenEndpoint, false));
    }

    #[test]
    fn malformed_success_is_bad_response() {
        for json in [
            "not json",
            r#"{"expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":"mac"}"#,
            r#"{"access_token":"t","expires_in":60}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":-5,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":"soon","token_type":"Bearer"}"#,
            r#"{"access_token":42,"expires_in":60,"token_type":"Bearer"}"#,
        ] {
            assert_eq!(err(200, json).0, ErrorCode::BadResponse, "{json}");
        }
    }

    #[test]
    fn lenient_fields_tolerate_odd_types() {
        let b = body(r#"{"error":500,"message":["x"],"expires_in":"60"}"#).unwrap();
        assert_eq!(b.error, None);
        assert_eq!(b.expires_in, Some(60.0));
    }

    #[test]
    fn expiry_takes_the_earlier_of_expires_in_and_jwt_exp() {
        let now = 1_700_000_000_000;
        assert_eq!(compute_expiry(now, Some(7200.0), Some(1_700_000_900.0)), Some(now + 900_000));
        assert_eq!(compute_expiry(now, Some(900.0), Some(1_700_007_200.0)), Some(now + 900_000));
        assert_eq!(compute_expiry(now, None, Some(1_700_000_060.0)), Some(now + 60_000));
        assert_eq!(compute_expiry(now, Some(60.0), None), Some(now + 60_000));
        // exp in the past (skewed clock) is ignored rather than expiring the token at once
        assert_eq!(compute_expiry(now, Some(60.0), Some(1_600_000_000.0)), Some(now + 60_000));
        assert_eq!(compute_expiry(now, None, Some(1_600_000_000.0)), None);
        assert_eq!(compute_expiry(now, Some(f64::NAN), None), None);
        assert_eq!(compute_expiry(now, Some(1e300), None), Some(now + MAX_LIFETIME_MS));
    }

    #[test]
    fn jwt_exp_is_used_through_the_callback() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1000,"sub":"x"}"#);
        let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        let decoded = jwt_payload(&jwt).unwrap();
        let claims: JwtClaims = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(claims.exp, Some(1000.0));
        let json = format!(r#"{{"access_token":"{jwt}","expires_in":7200,"token_type":"Bearer"}}"#);
        let exp =
            |t: &str| jwt_payload(t).and_then(|p| serde_json::from_slice::<JwtClaims>(&p).ok()).and_then(|c| c.exp);
        match interpret_token_response(200, body(&json), exp, None, 400_000) {
            TokenAnswer::Token(t) => assert_eq!(t.expires_at, 1_000_000),
            other => panic!("{other:?}"),
        }
        assert!(jwt_payload("not-a-jwt").is_none());
        assert!(jwt_payload("a.b.c.d").is_none());
        assert!(jwt_payload("a.!!!.c").is_none());
    }

    fn token(lifetime_ms: u64) -> Token {
        Token { value: AccessToken::new("t".into()), obtained_at: 0, expires_at: lifetime_ms }
    }

    #[test]
    fn margins_for_5s_1h_2h_tokens() {
        let m = Margins::default();
        // 5 s: hard 0.5 s, soft 2.5 s
        let t = token(5_000);
        assert_eq!((m.hard(5_000), m.soft(5_000)), (500, 2_500));
        assert_eq!(m.freshness(&t, 2_499), Freshness::Fresh);
        assert_eq!(m.freshness(&t, 2_500), Freshness::RefreshAhead);
        assert_eq!(m.freshness(&t, 4_500), Freshness::MustRefresh);
        assert_eq!(m.freshness(&t, 5_000), Freshness::Expired);
        // 1 h: hard 60 s, soft 5 min
        assert_eq!((m.hard(3_600_000), m.soft(3_600_000)), (60_000, 300_000));
        // 2 h: same caps
        let t = token(7_200_000);
        assert_eq!(m.refresh_at(&t), 6_900_000);
        assert_eq!(m.stale_at(&t), 7_140_000);
        // 15 min
        assert_eq!((m.hard(900_000), m.soft(900_000)), (60_000, 300_000));
        // a custom soft cap below the hard margin never inverts the windows
        let m2 = Margins { hard_cap_ms: 60_000, soft_cap_ms: 1_000 };
        assert_eq!(m2.soft(3_600_000), 60_000);
    }

    #[test]
    fn only_invalid_token_401_is_cured_by_a_new_token() {
        let expired =
            body(r#"{"error":"invalid_token","error_description":"The access token is invalid or has expired"}"#);
        assert_eq!(classify_401(None, expired.as_ref()), Api401::InvalidToken);
        let missing = body(r#"{"error":"invalid_request","error_description":"The access token is missing"}"#);
        assert_eq!(classify_401(None, missing.as_ref()), Api401::Other);
        let scope = body(r#"{"message":"Unauthorized"}"#);
        assert_eq!(classify_401(None, scope.as_ref()), Api401::Other);
        assert_eq!(classify_401(Some(r#"Bearer error="invalid_token""#), None), Api401::InvalidToken);
        assert_eq!(classify_401(None, None), Api401::Other);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3", 0), Some(3_000));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(0));
        let now = 784_111_777_000 - 2_000; // Sun, 06 Nov 1994 08:49:37 GMT minus 2 s
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(2_000));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
    }
}
