//! Token endpoint answers, expiry math and API 401 classification.
//!
//! JSON text is parsed by the caller (natively with serde_json in tests, in wasm with the
//! host's `JSON.parse`, which keeps a JSON parser out of the wasm) and handed over member
//! by member as [`Field`]s; everything after that is decided here.

use std::borrow::Cow;

use super::error::{ErrorCode, VccError};
use super::secret::AccessToken;
use super::text;

/// One JSON member as far as we care: a string, a number, or anything else/absent.
/// The caller reads members with its platform's JSON (the host's `JSON.parse` in wasm,
/// serde_json in tests); keeping a JSON parser and serde's error formatting out of the
/// wasm saves most of its size.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A JSON string.
    Str(String),
    /// A JSON number.
    Num(f64),
    /// Missing, null, or of another type.
    Absent,
}

impl Field {
    fn string(self) -> Option<String> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Numbers, and numeric strings from lax servers (`"7200"`).
    fn number(self) -> Option<f64> {
        match self {
            Field::Num(n) => Some(n),
            Field::Str(s) => s.trim().parse::<u64>().ok().map(|n| n as f64),
            Field::Absent => None,
        }
    }
}

/// The members of a token-endpoint or API error body we look at. Every member is
/// lenient: one of an unexpected type reads as absent instead of failing the whole
/// body, so a 5xx with `{"error": 500}` still classifies by status.
#[derive(Debug, Default)]
pub struct OAuthBody {
    /// The token, on success.
    pub access_token: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: Option<f64>,
    /// `Bearer` or `bearer`.
    pub token_type: Option<String>,
    /// RFC 6749 error code.
    pub error: Option<String>,
    /// RFC 6749 error description.
    pub error_description: Option<String>,
    /// VCC's other error shape: `{"message": "..."}`.
    pub message: Option<String>,
}

impl OAuthBody {
    /// Builds the body from a member reader (`get("access_token")` etc.).
    pub fn from_fields(mut get: impl FnMut(&str) -> Field) -> Self {
        Self {
            access_token: get("access_token").string(),
            expires_in: get("expires_in").number(),
            token_type: get("token_type").string(),
            error: get("error").string(),
            error_description: get("error_description").string(),
            message: get("message").string(),
        }
    }
}

/// The JWT `exp` claim (seconds since the epoch) from a payload's `exp` member.
pub fn jwt_exp_from_field(exp: Field) -> Option<f64> {
    exp.number()
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

/// A JWT's payload segment converted from base64url to standard, padded base64, ready
/// for a base64 decoder (the host's `atob` in wasm: no base64 code in the wasm).
/// `None` if the token is not three dot-separated base64url segments.
pub fn jwt_payload_base64(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    base64url_to_std(payload)
}

/// One base64url segment (padding optional) as standard, padded base64; `None` if it is
/// not base64url.
pub fn base64url_to_std(segment: &str) -> Option<String> {
    let segment = segment.trim_end_matches('=');
    if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') || segment.len() % 4 == 1 {
        return None;
    }
    let mut out: String = segment
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while out.len() % 4 != 0 {
        out.push('=');
    }
    Some(out)
}

/// Shortest lifetime we believe (a second). A shorter one would be expired before it
/// could be used, and every call would fetch again.
pub const MIN_LIFETIME_MS: u64 = 1000;

/// Expiry from `expires_in` (seconds from `requested_at`) and the JWT `exp` (seconds
/// since the epoch), taking the earlier. An `exp` less than [`MIN_LIFETIME_MS`] after
/// `requested_at` means the clocks disagree (the server just issued it), so it is
/// ignored rather than making every token look expired, which would refetch on every
/// call; an `expires_in` that short (`1e-9`, found by the `token_response` fuzzer) is
/// not a lifetime either.
pub fn compute_expiry(requested_at: u64, expires_in_s: Option<f64>, jwt_exp_s: Option<f64>) -> Option<u64> {
    let from_expires_in = expires_in_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| ((s * 1000.0) as u64).min(MAX_LIFETIME_MS))
        .filter(|ms| *ms >= MIN_LIFETIME_MS)
        .map(|ms| requested_at + ms);
    let from_jwt = jwt_exp_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1000.0) as u64)
        .filter(|ms| *ms >= requested_at.saturating_add(MIN_LIFETIME_MS))
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
/// `jwt_exp` is the `exp` claim the caller extracted from the token, if any. `secret` is
/// the client secret, removed from the server's `error_description` before that is
/// shortened (a secret cut in two by the shortening would no longer be found whole).
pub fn interpret_token_response(
    status: u16,
    body: Option<OAuthBody>,
    jwt_exp: impl FnOnce(&str) -> Option<f64>,
    retry_after_ms: Option<u64>,
    requested_at: u64,
    secret: &str,
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
        match body.error_description.as_deref().map(|d| sanitize_description(d, secret)) {
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
        Some("unauthorized_client") => (
            ErrorCode::Unauthorized,
            described(
                "the token endpoint says this client may not use the client-credentials grant (unauthorized_client)",
            ),
        ),
        Some("access_denied") => {
            (ErrorCode::Forbidden, described("the token endpoint denied this client access (access_denied)"))
        }
        None if status == 403 => (
            ErrorCode::Forbidden,
            Cow::Borrowed("the token endpoint refused this client (HTTP 403; a firewall or an IP allow-list?)"),
        ),
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

/// Server text is shown to users: printable, without the secret (a server may echo the
/// request), then short. In that order: control characters could hide the secret from
/// the search, and shortening first could leave its first characters behind (the fuzzer
/// target `error_body` checks that no 8 characters of it survive).
fn sanitize_description(d: &str, secret: &str) -> String {
    let printable: String = d.chars().filter(|c| !c.is_control()).collect();
    let scrubbed = if secret.len() >= 4 { text::replace(&printable, secret, "[redacted]") } else { printable };
    scrubbed.chars().take(200).collect()
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
    let header_says =
        www_authenticate.is_some_and(|h| text::contains(&h.to_ascii_lowercase(), "error=\"invalid_token\""));
    let body_says = body.is_some_and(|b| {
        b.error.as_deref() == Some("invalid_token")
            || b.error_description.as_deref().is_some_and(|d| text::contains(d, "invalid or has expired"))
    });
    if header_says || body_says {
        Api401::InvalidToken
    } else {
        Api401::Other
    }
}

/// Parses `Retry-After`: delta-seconds, or an HTTP-date read by `parse_date` (to epoch
/// ms; the host's `Date.parse` in wasm), in milliseconds from `now`.
pub fn parse_retry_after(value: &str, now_ms: u64, parse_date: impl FnOnce(&str) -> Option<u64>) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(|s| s.saturating_mul(1000));
    }
    // An HTTP-date has a weekday, a comma and "GMT"; refuse anything else before asking
    // a lenient date parser.
    if !(v.contains(',') && v.ends_with("GMT")) {
        return None;
    }
    parse_date(v).map(|at| at.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// What the glue does with `JSON.parse` + `Reflect`, done with serde_json.
    fn body(json: &str) -> Option<OAuthBody> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let o = v.as_object()?;
        Some(OAuthBody::from_fields(|k| field(o.get(k))))
    }

    fn field(v: Option<&serde_json::Value>) -> Field {
        match v {
            Some(serde_json::Value::String(s)) => Field::Str(s.clone()),
            Some(serde_json::Value::Number(n)) => n.as_f64().map_or(Field::Absent, Field::Num),
            _ => Field::Absent,
        }
    }

    fn b64(standard: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(standard).unwrap()
    }

    fn http_date(v: &str) -> Option<u64> {
        let t = httpdate::parse_http_date(v).ok()?;
        Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
    }

    fn no_jwt(_: &str) -> Option<f64> {
        None
    }

    fn err(status: u16, json: &str) -> (ErrorCode, String, bool) {
        match interpret_token_response(status, body(json), no_jwt, None, 0, "s3cret-value") {
            TokenAnswer::Failed { error, retryable } => (error.code, error.to_string(), retryable),
            TokenAnswer::Token(_) => panic!("expected failure"),
        }
    }

    #[test]
    fn parses_success_with_either_token_type_case() {
        for tt in ["Bearer", "bearer", "BEARER"] {
            let json = format!(r#"{{"access_token":"eyJ.x.y","expires_in":7200,"token_type":"{tt}"}}"#);
            match interpret_token_response(200, body(&json), no_jwt, None, 1_000, "s3cret-value") {
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
    fn a_client_not_allowed_is_unauthorized_and_a_refusal_without_a_code_is_forbidden() {
        let code = |status, json: &str| match interpret_token_response(status, body(json), |_| None, None, 0, "s3cr3t!")
        {
            TokenAnswer::Failed { error, retryable: false } => (error.code, error.status, error.message),
            other => panic!("{other:?}"),
        };
        let (c, status, m) = code(400, r#"{"error":"unauthorized_client","error_description":"s3cr3t! no"}"#);
        assert_eq!((c, status), (ErrorCode::Unauthorized, Some(400)));
        assert!(!m.contains("s3cr3t!"), "{m}");
        assert_eq!(code(403, r#"{"error":"access_denied"}"#).0, ErrorCode::Forbidden);
        assert_eq!(code(403, "<html>blocked</html>").0, ErrorCode::Forbidden);
        assert_eq!(code(401, "").0, ErrorCode::InvalidClient, "a bare 401 stays invalid_client");
        assert_eq!(code(418, "").0, ErrorCode::TokenEndpoint);
    }

    #[test]
    fn lenient_fields_tolerate_odd_types() {
        let b = body(r#"{"error":500,"message":["x"],"expires_in":"60"}"#).unwrap();
        assert_eq!(b.error, None);
        assert_eq!(b.message, None);
        assert_eq!(b.expires_in, Some(60.0));
        assert_eq!(body(r#"{"expires_in":"6.5e3"}"#).unwrap().expires_in, None);
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
        let decoded = b64(&jwt_payload_base64(&jwt).unwrap());
        let claims: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(jwt_exp_from_field(field(claims.get("exp"))), Some(1000.0));
        let json = format!(r#"{{"access_token":"{jwt}","expires_in":7200,"token_type":"Bearer"}}"#);
        let exp = |t: &str| {
            jwt_payload_base64(t)
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(&b64(&p)).ok())
                .and_then(|c| jwt_exp_from_field(field(c.get("exp"))))
        };
        match interpret_token_response(200, body(&json), exp, None, 400_000, "s3cret-value") {
            TokenAnswer::Token(t) => assert_eq!(t.expires_at, 1_000_000),
            other => panic!("{other:?}"),
        }
        assert!(jwt_payload_base64("not-a-jwt").is_none());
        assert!(jwt_payload_base64("a.b.c.d").is_none());
        assert!(jwt_payload_base64("a.!!!.c").is_none());
        assert!(jwt_payload_base64("a..c").is_none());
        // every padding length round-trips through a standard decoder
        let cases: [&[u8]; 5] = [b"{}", b"{\"exp\":1}", b"{\"exp\":12}", b"{\"exp\":123}", &[0xfb, 0xff, 0xfe]];
        for claims in cases {
            let seg = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
            assert_eq!(b64(&jwt_payload_base64(&format!("h.{seg}.s")).unwrap()), claims);
        }
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
        assert_eq!(parse_retry_after("3", 0, http_date), Some(3_000));
        assert_eq!(parse_retry_after(" 0 ", 0, http_date), Some(0));
        let now = 784_111_777_000 - 2_000; // Sun, 06 Nov 1994 08:49:37 GMT minus 2 s
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, http_date), Some(2_000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 5_000, http_date), Some(0));
        assert_eq!(parse_retry_after("soon", 0, |_| Some(1)), None);
        assert_eq!(parse_retry_after("-1", 0, |_| Some(1)), None);
    }
}
