//! Shared emulator state: clients, issued tokens, faults and counters, per client.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A registered API client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub secret: String,
    /// Granted scopes; `*` grants all.
    pub scopes: Vec<String>,
    pub lifetime_s: u64,
}

/// Fault injection, per client (or global under the empty client id).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Answer the next N token requests with 500.
    pub token5xx: u32,
    /// Answer the next N token requests with 503 `{"message": ...}` (VCC's other 5xx shape).
    pub token503: u32,
    /// Answer the next N token requests with 429.
    pub token429: u32,
    /// Retry-After seconds sent with those 429s.
    pub retry_after: Option<u64>,
    /// Answer the next N token requests with malformed JSON.
    pub token_malformed: u32,
    /// While true every token request gets 503 ("token endpoint down").
    pub token_down: bool,
    /// Delay every token answer by this many ms.
    pub token_delay_ms: u64,
    /// Answer the next N API requests with 503.
    pub api5xx: u32,
    /// Delay every API answer by this many ms.
    pub api_delay_ms: u64,
    /// Answer every token request with a redirect to this URL (a hostile or
    /// misconfigured front end): nothing that follows it may carry the secret.
    pub token_redirect: Option<String>,
    /// Answer every API request with a redirect to this URL (relative or absolute).
    pub api_redirect: Option<String>,
    /// Status of those redirects (default 307).
    pub redirect_status: Option<u16>,
    /// Add to every API answer what a hostile upstream could echo: the request's
    /// `Authorization`, CORS grants, `Location`, `Refresh`, and a header that
    /// `Connection` names.
    pub api_echo_headers: bool,
    /// Answer every API request with a 401 `invalid_token` body of this many bytes
    /// (padded JSON, no `WWW-Authenticate`), streamed.
    pub api401_body_bytes: u64,
    /// Send an API answer's headers and the first part of its body, then stall this
    /// many ms before the rest.
    pub api_stall_ms: u64,
    /// With `api_stall_ms`: keep the answer's `Content-Length` (a body of known size that
    /// stalls), where by default the stalled answer is chunked.
    pub api_stall_sized: bool,
    /// With `api_stall_ms`: this many bytes of `x` after the stall (in the middle of the
    /// answer, counted in its `Content-Length`): a long answer that stalls.
    pub api_stall_pad: u64,
    /// Answer every API request with 401 `invalid_token`, whatever the token.
    pub invalid_token_always: bool,
    /// The identity provider's JWKS answers with a redirect to this URL (global only).
    pub jwks_redirect: Option<String>,
    /// The identity provider's JWKS answers this many ms late (global only).
    pub jwks_stall_ms: u64,
    /// The identity provider's JWKS answers 503 (global only).
    pub jwks_down: bool,
    /// Answer API requests under this path with 401 `invalid_token`, whatever the
    /// token, while every other path works: a path that says 401 for reasons of its own.
    pub invalid_token_path: Option<String>,
    /// Answer this percentage of token requests (at random) with 500: a flaky endpoint
    /// for the soak test.
    pub token_fail_percent: u32,
    /// Drop the connection of the next N token requests without answering.
    pub token_reset: u32,
    /// Answer the next N token requests with a 200 whose body stops halfway (the
    /// connection closes before `Content-Length` bytes).
    pub token_truncated: u32,
    /// Send this as `expires_in` (any JSON: 0, -5, 1e12, "7200") instead of the lifetime.
    pub token_expires_in: Option<serde_json::Value>,
    /// Issue opaque tokens (no JWT, so no `exp` to fall back on).
    pub token_opaque: bool,
    /// Tokens stop working this many ms after issue, whatever they announce.
    pub token_dies_after_ms: Option<u64>,
    /// The token server's clock, seconds ahead (+) or behind (−) the host's: shifts the
    /// JWT's `iat`, `nbf` and `exp`.
    pub token_clock_skew_s: i64,
    /// Answer the next N API requests with 429 (and `retryAfter` as `Retry-After`).
    pub api429: u32,
    /// Drop the connection of the next N API requests without answering.
    pub api_reset: u32,
    /// Answer the next N API requests with a body that stops halfway.
    pub api_truncated: u32,
    /// Answer the next N API requests with 200 and a body that is not JSON.
    pub api_garbage: u32,
}

/// Each connection's switch (a request extension, from `main`'s accept loop): notified,
/// the connection is dropped at once, with no answer, as a crashed front end would.
#[derive(Clone, Default)]
pub struct DropSwitch(pub Arc<tokio::sync::Notify>);

/// Drops the connection a request came on, without an answer, and never returns.
pub async fn drop_connection(switch: Option<&DropSwitch>) -> axum::response::Response {
    if let Some(s) = switch {
        s.0.notify_one();
    }
    std::future::pending().await
}

/// `response` with its body cut halfway: `Content-Length` still announces all of it, and
/// the stream fails after the first half, so the connection closes mid-body.
pub async fn truncated(response: axum::response::Response) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.insert(axum::http::header::CONTENT_LENGTH, axum::http::HeaderValue::from(bytes.len()));
    // The pause lets the head and the first half go out before the failure closes the
    // connection (without it hyper drops them unsent, and the fault is a reset instead).
    let stream = futures_util::stream::unfold(Some(half), |half| async move {
        match half {
            Some(h) => Some((Ok::<_, std::io::Error>(h), None)),
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Some((Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected truncation")), None))
            }
        }
    });
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// A token the emulator issued.
#[derive(Clone, Debug)]
pub struct Issued {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: u64,
    /// Revoked tokens are kept (marked) so a 401 can still be attributed to its client.
    pub revoked: bool,
}

impl Issued {
    pub fn valid_at(&self, now_ms: u64) -> bool {
        !self.revoked && self.expires_at_ms > now_ms
    }
}

/// Counters per client.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Successful token requests by normalised scope.
    pub token_requests: BTreeMap<String, u32>,
    /// Every token request, whatever its answer.
    pub token_attempts: u32,
    pub api_requests: u32,
    pub api_401_invalid_token: u32,
    pub api_401_unauthorized: u32,
}

/// What an API request looked like when it arrived (for tests of what was forwarded).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names and values, Authorization replaced by what the token was.
    pub headers: BTreeMap<String, String>,
    pub client_id: Option<String>,
    pub status: u16,
    pub at: u64,
}

#[derive(Default)]
pub struct Inner {
    pub clients: HashMap<String, ClientConfig>,
    pub tokens: HashMap<String, Issued>,
    pub faults: HashMap<String, Faults>,
    pub stats: HashMap<String, Stats>,
    pub seen: VecDeque<Seen>,
    pub issued_count: u64,
    /// What reached `/_emulator/steal`: where a followed redirect would deliver.
    pub stolen: Vec<Stolen>,
    /// APIs served beyond the crate's table (`POST /_emulator/routes`): stand-ins for
    /// VCC APIs the table lacks, which a gateway reaches through `GATEWAY_ROUTES`.
    pub extra_routes: Vec<vcc_auth::core::routes::Route>,
}

/// A request that reached `/_emulator/steal`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stolen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

pub struct Emulator {
    pub default_lifetime_s: u64,
    pub verbose: bool,
    pub inner: Mutex<Inner>,
    /// The identity provider's keys (idp.rs).
    pub idp: Mutex<crate::idp::Idp>,
    /// The emulator's own URL, once it listens: the identity provider's issuer.
    pub url: std::sync::OnceLock<String>,
}

pub const SEEN_LIMIT: usize = 500;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Emulator {
    pub fn new(default_lifetime_s: u64, verbose: bool) -> Self {
        Self {
            default_lifetime_s,
            verbose,
            inner: Mutex::new(Inner::default()),
            idp: Mutex::new(crate::idp::Idp::new()),
            url: std::sync::OnceLock::new(),
        }
    }

    /// The emulator's URL (`http://127.0.0.1:port`): the identity provider's `iss`.
    pub fn url(&self) -> String {
        self.url.get().cloned().unwrap_or_default()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug in a handler; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_client(&self, id: String, c: ClientConfig) {
        self.lock().clients.insert(id, c);
    }
}

impl Inner {
    /// Faults for a client: its own merged over the global ones (empty id). Counters
    /// are consumed from the client's own entry first, then the global one.
    pub fn take_fault(&mut self, client_id: &str, pick: impl Fn(&mut Faults) -> &mut u32) -> bool {
        for id in [client_id, ""] {
            if let Some(f) = self.faults.get_mut(id) {
                let n = pick(f);
                if *n > 0 {
                    *n -= 1;
                    return true;
                }
            }
        }
        false
    }

    pub fn fault_flag(&self, client_id: &str, pick: impl Fn(&Faults) -> u64) -> u64 {
        [client_id, ""].iter().filter_map(|id| self.faults.get(*id)).map(pick).max().unwrap_or(0)
    }

    /// A client's faults (its own, else the global ones), for the settings that are not
    /// counters or flags.
    pub fn faults_of(&self, client_id: &str) -> Option<&Faults> {
        self.faults.get(client_id).or_else(|| self.faults.get(""))
    }

    /// The `Retry-After` seconds sent with injected 429s: the client's own, else the
    /// global one.
    pub fn retry_after(&self, client_id: &str) -> Option<u64> {
        [client_id, ""].iter().find_map(|id| self.faults.get(*id).and_then(|f| f.retry_after))
    }

    pub fn stats_for(&mut self, client_id: &str) -> &mut Stats {
        self.stats.entry(client_id.to_owned()).or_default()
    }

    pub fn record(&mut self, seen: Seen) {
        if self.seen.len() >= SEEN_LIMIT {
            self.seen.pop_front();
        }
        self.seen.push_back(seen);
    }
}
