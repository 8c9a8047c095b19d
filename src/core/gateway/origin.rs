//! CORS: how a request's `Origin` stands, and the headers the gateway (alone) sets.

use super::GatewayConfig;

/// How the origin of a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header (server-to-server, curl).
    None,
    /// The gateway's own origin (the demo page).
    Same,
    /// A listed cross-origin: CORS headers for it.
    Allowed(String),
    /// Anything else: no CORS headers; refused unless it is no-CORS traffic.
    Denied,
}

impl GatewayConfig {
    /// Classifies the request's `Origin`.
    pub fn check_origin(&self, origin: Option<&str>, self_origin: &str) -> OriginCheck {
        match origin {
            None => OriginCheck::None,
            Some(o) if o == self_origin => OriginCheck::Same,
            Some(o) if self.allowed_origins.iter().any(|a| a == o) => OriginCheck::Allowed(o.to_owned()),
            Some(_) => OriginCheck::Denied,
        }
    }
}

/// CORS headers for an allowed origin on a normal response.
pub fn cors_headers(origin: &str) -> [(&'static str, String); 3] {
    [
        ("access-control-allow-origin", origin.to_owned()),
        ("vary", "Origin".to_owned()),
        ("access-control-expose-headers", "Retry-After, Content-Type".to_owned()),
    ]
}

/// CORS headers for a preflight answer.
pub fn preflight_headers(origin: &str) -> [(&'static str, String); 5] {
    [
        ("access-control-allow-origin", origin.to_owned()),
        ("vary", "Origin".to_owned()),
        ("access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE".to_owned()),
        ("access-control-allow-headers", "Authorization, Content-Type, Accept".to_owned()),
        ("access-control-max-age", "600".to_owned()),
    ]
}
