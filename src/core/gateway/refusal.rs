//! Every refusal the gateway gives, each with its own stable code: callers, the page,
//! the tests and the log branch on the code, never on the message.

use super::json::error_json;

/// Why the gateway answers instead of VCC. The JSON body is
/// `{"error": code, "message": message}`; `code` never changes meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the caller's body could not be read (the connection broke while sending it).
    BadRequest,
    /// 401: no credential: no `Authorization: Bearer <gateway key>` (nor, where people
    /// sign in, a sign-in token).
    NoKey,
    /// 401: not a gateway key at all: wrong prefix or length, or a checksum that does
    /// not match (a typo, a truncated paste). Refused before any lookup.
    MalformedKey,
    /// 401: a well-formed key that is not in `GATEWAY_KEYS`.
    UnknownKey,
    /// 401: a key whose entry's `expires` has passed.
    ExpiredKey,
    /// 401: a sign-in token that is not valid: malformed or over 16 KiB, an algorithm
    /// the settings do not allow, a key the issuer does not publish, a bad signature.
    BadIdentity,
    /// 401: a sign-in token past its `exp` (and the leeway).
    IdentityExpired,
    /// 401: a sign-in token before its `nbf` (and the leeway).
    IdentityNotYetValid,
    /// 401: a sign-in token from another issuer than `ACCESS_ISSUER`.
    IdentityWrongIssuer,
    /// 401: a sign-in token for another audience than `ACCESS_AUDIENCE`.
    IdentityWrongAudience,
    /// 403: the key or person does not hold the route's scope.
    ScopeDenied,
    /// 403: a valid sign-in that no `GATEWAY_ACCESS_POLICY` row names.
    IdentityNotAllowed,
    /// 403: the `Origin` is neither the gateway's own nor in `ALLOWED_ORIGINS`.
    OriginDenied,
    /// 404: no route in the table for this path.
    RouteNotFound,
    /// 404: a path or query that is not plain (dot segments in any disguise, encoded
    /// slashes or control characters, …): refused before anything is looked up.
    PathNotPlain,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 408: the caller did not finish sending its body within `BODY_TIMEOUT_MS`.
    BodyTimeout,
    /// 413: a body over [`super::BODY_LIMIT`].
    BodyTooLarge,
    /// 429: the key is over its rate limit (`GATEWAY_RATE_LIMIT`); `Retry-After` says
    /// when to try again. Nothing went upstream.
    RateLimited,
    /// 500: a setting is missing or invalid (the message names it).
    Misconfigured,
    /// 502: no VCC token (the log's `detail` has the token error's code).
    TokenFailed,
    /// 502: VCC could not be reached.
    UpstreamUnreachable,
    /// 502: VCC's answer broke off before the end its `Content-Length` announced (read
    /// whole, see [`super::RESPONSE_BUFFER_LIMIT`]).
    UpstreamIncomplete,
    /// 502: VCC answered with a redirect, never followed (the token would go wherever
    /// `Location` says) and never passed on.
    UpstreamRedirect,
    /// 503: VCC rejected tokens it had just issued; none is asked for until the cooldown
    /// ends (`Retry-After`).
    TokenRejected,
    /// 503: this isolate already holds `BODY_BUFFER_LIMIT` bytes of request bodies
    /// (`Retry-After`): refused before it runs out of memory.
    GatewayBusy,
    /// 503: the issuer's keys (JWKS) cannot be had and none are cached, so no sign-in
    /// can be checked (`Retry-After`).
    IdentityUnavailable,
    /// 504: no answer from VCC within `UPSTREAM_TIMEOUT_MS`.
    UpstreamTimeout,
}

impl Refusal {
    /// Every refusal (the README's table lists each; a test checks it).
    pub const ALL: [Refusal; 28] = [
        Self::BadRequest,
        Self::NoKey,
        Self::MalformedKey,
        Self::UnknownKey,
        Self::ExpiredKey,
        Self::BadIdentity,
        Self::IdentityExpired,
        Self::IdentityNotYetValid,
        Self::IdentityWrongIssuer,
        Self::IdentityWrongAudience,
        Self::ScopeDenied,
        Self::IdentityNotAllowed,
        Self::OriginDenied,
        Self::RouteNotFound,
        Self::PathNotPlain,
        Self::MethodNotAllowed,
        Self::BodyTimeout,
        Self::BodyTooLarge,
        Self::RateLimited,
        Self::Misconfigured,
        Self::TokenFailed,
        Self::UpstreamUnreachable,
        Self::UpstreamIncomplete,
        Self::UpstreamRedirect,
        Self::TokenRejected,
        Self::GatewayBusy,
        Self::IdentityUnavailable,
        Self::UpstreamTimeout,
    ];

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::NoKey
            | Self::MalformedKey
            | Self::UnknownKey
            | Self::ExpiredKey
            | Self::BadIdentity
            | Self::IdentityExpired
            | Self::IdentityNotYetValid
            | Self::IdentityWrongIssuer
            | Self::IdentityWrongAudience => 401,
            Self::ScopeDenied | Self::OriginDenied | Self::IdentityNotAllowed => 403,
            Self::RouteNotFound | Self::PathNotPlain => 404,
            Self::MethodNotAllowed => 405,
            Self::BodyTimeout => 408,
            Self::BodyTooLarge => 413,
            Self::RateLimited => 429,
            Self::Misconfigured => 500,
            Self::TokenFailed | Self::UpstreamUnreachable | Self::UpstreamIncomplete | Self::UpstreamRedirect => 502,
            Self::TokenRejected | Self::GatewayBusy | Self::IdentityUnavailable => 503,
            Self::UpstreamTimeout => 504,
        }
    }

    /// The stable code (`error` in the JSON body, `detail` in the log line).
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NoKey => "no_key",
            Self::MalformedKey => "malformed_key",
            Self::UnknownKey => "unknown_key",
            Self::ExpiredKey => "expired_key",
            Self::BadIdentity => "bad_identity",
            Self::IdentityExpired => "identity_expired",
            Self::IdentityNotYetValid => "identity_not_yet_valid",
            Self::IdentityWrongIssuer => "identity_wrong_issuer",
            Self::IdentityWrongAudience => "identity_wrong_audience",
            Self::IdentityNotAllowed => "identity_not_allowed",
            Self::IdentityUnavailable => "identity_unavailable",
            Self::ScopeDenied => "scope_denied",
            Self::OriginDenied => "origin_denied",
            Self::RouteNotFound => "route_not_found",
            Self::PathNotPlain => "path_not_plain",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTimeout => "body_timeout",
            Self::BodyTooLarge => "body_too_large",
            Self::RateLimited => "rate_limited",
            Self::Misconfigured => "gateway_misconfigured",
            Self::TokenFailed => "token_failed",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamIncomplete => "upstream_incomplete",
            Self::UpstreamRedirect => "upstream_redirect",
            Self::TokenRejected => "token_rejected",
            Self::GatewayBusy => "gateway_busy",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// A message safe to show (ours, never upstream text).
    pub fn message(self) -> &'static str {
        match self {
            Self::BadRequest => "the request body could not be read",
            Self::NoKey => "sign in, or send Authorization: Bearer <gateway key>",
            Self::MalformedKey => {
                "this is not a gateway key (it should start vccgw_; check for a typo or a cut-off paste)"
            }
            Self::UnknownKey => "unknown gateway key",
            Self::ExpiredKey => "this gateway key has expired; ask whoever runs the gateway for a new one",
            Self::BadIdentity => "the sign-in token is not valid; sign in again",
            Self::IdentityExpired => "the sign-in has expired; sign in again",
            Self::IdentityNotYetValid => "the sign-in token is not valid yet (are the clocks right?)",
            Self::IdentityWrongIssuer => "the sign-in token comes from another issuer than this gateway trusts",
            Self::IdentityWrongAudience => "the sign-in token is for another application than this gateway",
            Self::IdentityNotAllowed => "you are signed in, but no access policy row grants you anything here",
            Self::IdentityUnavailable => {
                "the sign-in provider's keys cannot be had right now; try again after Retry-After seconds"
            }
            Self::ScopeDenied => "this key or person may not use this API",
            Self::OriginDenied => "this origin is not allowed (ALLOWED_ORIGINS)",
            Self::RouteNotFound => "no VCC API route for this path",
            Self::PathNotPlain => {
                "the path or query is not plain (dot segments, encoded slashes or control characters)"
            }
            Self::MethodNotAllowed => "this API does not allow this method",
            Self::BodyTimeout => "the request body did not arrive in time",
            Self::BodyTooLarge => "request bodies are limited to 100 KiB (VCC's own APIs take 100 KB)",
            Self::RateLimited => "this gateway key is over its rate limit; try again after Retry-After seconds",
            Self::Misconfigured => "the gateway is misconfigured",
            Self::TokenFailed => "the gateway could not get a VCC token",
            Self::UpstreamUnreachable => "VCC could not be reached",
            Self::UpstreamIncomplete => "VCC's answer broke off before its end",
            Self::UpstreamRedirect => "VCC answered with a redirect, which the gateway does not follow",
            Self::TokenRejected => "VCC is rejecting the tokens it issues; the gateway is waiting before asking again",
            Self::GatewayBusy => {
                "the gateway holds too many request bodies right now; try again after Retry-After seconds"
            }
            Self::UpstreamTimeout => "VCC did not answer in time",
        }
    }

    /// `{"error": code, "message": message}`.
    pub fn json(self) -> String {
        error_json(self.code(), self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_statuses_as_documented() {
        let mut codes: Vec<_> = Refusal::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Refusal::ALL.len(), "two refusals share a code");
        for r in Refusal::ALL {
            assert!(r.code().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{r:?}");
            assert!((400..600).contains(&r.status()));
            let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
            assert_eq!(v["error"], r.code());
        }
    }

    /// The demo page explains each refusal in words (`explain` in www/app.js): every
    /// code must have its case there.
    #[test]
    fn the_page_explains_every_refusal() {
        let page = include_str!("../../../www/app.js");
        for r in Refusal::ALL {
            let case = format!("case \"{}\":", r.code());
            assert!(page.contains(&case), "www/app.js explain() has no {case}");
        }
    }

    /// The README's refusal table is the callers' reference: every code must be in it,
    /// with its status.
    #[test]
    fn the_readme_lists_every_refusal() {
        let readme = include_str!("../../../README.md");
        for r in Refusal::ALL {
            let code = format!("| `{}` |", r.code());
            // A refusal's row starts with its status: the client's error table does not.
            let row = readme.lines().find(|l| (l.starts_with("| 4") || l.starts_with("| 5")) && l.contains(&code));
            let row = row.unwrap_or_else(|| panic!("README's refusal table lacks `{}`", r.code()));
            assert!(
                row.starts_with(&format!("| {} ", r.status())),
                "README gives `{}` another status: {row}",
                r.code()
            );
        }
    }
}
