//! Typed errors with stable codes.
//!
//! Every failure the library reports is a [`VccError`]: a [`ErrorCode`] whose string form
//! is part of the public contract (JS `error.code`), a human message, and, where it
//! helps, the HTTP status and a server-requested retry delay. Messages are built from
//! static text plus values that are safe to show (field names, scopes, statuses, a
//! server's error description with secrets scrubbed), never a secret, a token or a body.

use std::borrow::Cow;

use super::text;

/// Stable error codes. The string forms (see [`ErrorCode::as_str`]) never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Bad configuration or bad arguments (names the field, never its value).
    InvalidConfig,
    /// The token endpoint rejected the client id or secret.
    InvalidClient,
    /// The token endpoint rejected the scope (unknown, or not granted to this client).
    InvalidScope,
    /// The token endpoint does not support the grant type.
    UnsupportedGrantType,
    /// The token endpoint says the request was malformed.
    InvalidRequest,
    /// Any other token endpoint failure (5xx, unexpected status or error).
    TokenEndpoint,
    /// The request never got an HTTP answer (DNS, connection, CORS, TLS).
    Network,
    /// No answer within `timeoutMs`.
    Timeout,
    /// HTTP 429 from VCC's fair-usage limit, after the allowed retries.
    RateLimited,
    /// An API answered 401 and a new token would not help.
    Unauthorized,
    /// An API answered 403.
    Forbidden,
    /// A response that is not what the protocol says (bad JSON, missing fields).
    BadResponse,
    /// The client was closed.
    Closed,
    /// An upstream (the token endpoint or an API) answered with a redirect. Redirects are
    /// never followed: the secret or token would go wherever the `Location` says.
    Redirect,
    /// VCC rejected a token it had just issued (401 `invalid_token` on a fresh token), so
    /// the scope waits out a cooldown before asking for another (`retryAfterMs`).
    TokenRejected,
}

impl ErrorCode {
    /// Every code, for [`ErrorCode::parse`].
    pub const ALL: [ErrorCode; 15] = [
        Self::InvalidConfig,
        Self::InvalidClient,
        Self::InvalidScope,
        Self::UnsupportedGrantType,
        Self::InvalidRequest,
        Self::TokenEndpoint,
        Self::Network,
        Self::Timeout,
        Self::RateLimited,
        Self::Unauthorized,
        Self::Forbidden,
        Self::BadResponse,
        Self::Closed,
        Self::Redirect,
        Self::TokenRejected,
    ];

    /// The code whose [`ErrorCode::as_str`] is `s` (inverse of it, so the two never
    /// drift apart).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The stable string form used as JS `error.code` and in gateway JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::InvalidClient => "invalid_client",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidRequest => "invalid_request",
            Self::TokenEndpoint => "token_endpoint",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::BadResponse => "bad_response",
            Self::Closed => "closed",
            Self::Redirect => "redirect",
            Self::TokenRejected => "token_rejected",
        }
    }
}

/// A failure with a stable code. `Display` is the message; it never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VccError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to log.
    pub message: Cow<'static, str>,
    /// HTTP status of the answer that caused the error, when there was one.
    pub status: Option<u16>,
    /// How long the server asked us to wait (Retry-After), in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// For `invalid_config`: the option or argument at fault (`timeoutMs`, `input`), so
    /// callers (the gateway naming its setting, a form marking a field) need not parse
    /// the message.
    pub field: Option<&'static str>,
}

impl VccError {
    /// An error with a code and message and no HTTP details.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), status: None, retry_after_ms: None, field: None }
    }

    /// `invalid_config` naming a field and what is wrong with it (never its value). The
    /// message is `<field> <problem>`; the field is also kept as [`VccError::field`].
    pub fn config(field: &'static str, problem: &str) -> Self {
        let mut m = String::with_capacity(field.len() + problem.len() + 1);
        m.push_str(field);
        m.push(' ');
        m.push_str(problem);
        Self { field: Some(field), ..Self::new(ErrorCode::InvalidConfig, m) }
    }

    /// Adds the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Removes every occurrence of `secret` from the message. Applied at the boundary
    /// where server-provided text (an `error_description`) enters an error, so that a
    /// server echoing the request cannot make the secret reach a log.
    pub fn scrub(mut self, secret: &str) -> Self {
        if secret.len() >= 4 && text::contains(&self.message, secret) {
            self.message = Cow::Owned(text::replace(&self.message, secret, "[redacted]"));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_secret_everywhere() {
        let e = VccError::new(ErrorCode::InvalidClient, "bad s3cr3t! and s3cr3t!".to_string()).scrub("s3cr3t!");
        assert_eq!(e.to_string(), "bad [redacted] and [redacted]");
        assert!(!format!("{e:?}").contains("s3cr3t!"));
    }

    #[test]
    fn parse_inverts_as_str() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    /// The TypeScript union users narrow on (`VccErrorCode`, written in
    /// src/glue/types.rs) must list exactly these codes.
    #[test]
    fn the_typescript_union_is_every_code() {
        let ts = include_str!("../glue/types.rs");
        let start = ts.find("export type VccErrorCode =").expect("types.rs declares VccErrorCode");
        let union = &ts[start..][..ts[start..].find(';').expect("the union ends with ;")];
        let mut listed: Vec<&str> = union.split('"').skip(1).step_by(2).collect();
        listed.sort_unstable();
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        assert_eq!(listed, codes, "VccErrorCode in src/glue/types.rs and ErrorCode::ALL disagree");
    }

    #[test]
    fn codes_are_stable_strings() {
        assert_eq!(ErrorCode::InvalidConfig.as_str(), "invalid_config");
        assert_eq!(ErrorCode::BadResponse.as_str(), "bad_response");
        assert_eq!(ErrorCode::RateLimited.as_str(), "rate_limited");
    }
}
