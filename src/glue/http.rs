//! HTTP through the global `fetch`, written once for the client and the gateway: every
//! upstream answer goes through [`await_upstream`] (a redirect is never followed, and
//! the deadline covers the whole exchange), bodies we read ourselves are capped
//! ([`read_capped`]), the bearer header is [`bearer`], and a 401 is classified by
//! [`is_invalid_token`]. JSON is parsed with the host's `JSON.parse` (no JSON parser in
//! the wasm).

use js_sys::{Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Response};
use zeroize::Zeroizing;

use crate::core::token::{classify_401, Api401};

use super::js::{atob, now_ms, random, sleep};
use crate::core::config::Settings;
use crate::core::error::{ErrorCode, VccError};
use crate::core::request::token_request;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::token::{
    interpret_token_response, jwt_exp_from_field, jwt_payload_base64, parse_retry_after, Field, OAuthBody, Token,
    TokenAnswer,
};

/// How much of an API 401 body is read to classify it. VCC's are under 200 bytes; a
/// hostile upstream's 30 MB one must not be buffered (an isolate has 128 MB).
const PROBE_CAP: u32 = 8 << 10;

/// Largest token endpoint answer we read (a JWT with many claims is a few KB).
const TOKEN_BODY_CAP: u32 = 64 << 10;

/// Why an exchange produced no response to work with.
pub enum Transport {
    /// The deadline passed (before the answer, or while reading its body).
    Timeout,
    /// No HTTP answer: network, DNS, TLS, CORS, or the caller's own abort (the JS error).
    Network(#[cfg_attr(not(feature = "client"), allow(dead_code))] JsValue),
    /// A redirect (its status; 0 when a browser hides it as an opaque redirect). Never
    /// followed: the secret or token would go wherever `Location` says.
    Redirect(u16),
}

/// A signal that aborts the exchange it is given to after `ms`: request, answer and the
/// answer's body alike, since fetch keeps watching the signal while the body streams.
/// Host-made (`AbortSignal.timeout`), so nothing of ours has to stay alive for it.
pub fn deadline(ms: u32) -> AbortSignal {
    AbortSignal::timeout_with_u32(ms)
}

/// `Bearer <token>`, zeroized when dropped.
pub fn bearer(token: &AccessToken) -> Zeroizing<String> {
    let mut value = Zeroizing::new(String::with_capacity(token.len() + 7));
    value.push_str("Bearer ");
    value.push_str(token.expose());
    value
}

/// Whether `response` is a redirect: any 3xx but 304 (which answers a conditional
/// request), or status 0, what a browser shows for one in `manual` mode.
fn is_redirect(response: &Response) -> bool {
    let status = response.status();
    status == 0 || ((300..400).contains(&status) && status != 304)
}

/// What a failed fetch or body read was: a timeout if `deadline` has fired, else the
/// network (or the caller's own abort).
fn failure(deadline: Option<&AbortSignal>) -> impl Fn(JsValue) -> Transport + '_ {
    move |e| match deadline {
        Some(d) if d.aborted() => Transport::Timeout,
        _ => Transport::Network(e),
    }
}

/// The answer to a fetch sent with manual redirects (by a host helper: `postForm`,
/// `sendApi`, the gateway's `sendUpstream`): a redirect is an error, its body cancelled
/// unread.
pub async fn await_upstream(
    promise: Result<js_sys::Promise, JsValue>,
    deadline: Option<&AbortSignal>,
) -> Result<Response, Transport> {
    let failed = failure(deadline);
    let response: Response = JsFuture::from(promise.map_err(&failed)?).await.map_err(&failed)?.unchecked_into();
    if is_redirect(&response) {
        discard(&response);
        return Err(Transport::Redirect(response.status()));
    }
    Ok(response)
}

/// Cancels a body we will not read, so its connection is freed.
pub fn discard(response: &Response) {
    if let Some(body) = response.body() {
        let _ = body.cancel();
    }
}

// The body reader and the token request's sender (see host.js for why they are JS).
#[wasm_bindgen(module = "/src/glue/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = readCapped)]
    fn read_capped_js(response: &Response, cap: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = postForm, catch)]
    fn post_form(url: &str, body: &str, basic: Option<&str>, signal: &AbortSignal) -> Result<js_sys::Promise, JsValue>;
}

/// Reads `response`'s body as text if it is at most `cap` bytes; past `cap` (or if it
/// is not UTF-8) `Ok(None)` and the rest is cancelled, never buffered.
pub async fn read_capped(
    response: &Response,
    cap: u32,
    deadline: Option<&AbortSignal>,
) -> Result<Option<String>, Transport> {
    let text = JsFuture::from(read_capped_js(response, cap)).await.map_err(failure(deadline))?;
    Ok(text.as_string())
}

/// Parses JSON text with the host's `JSON.parse`; `None` unless it is a JSON object.
pub fn parse_object(text: &str) -> Option<JsValue> {
    JSON::parse(text).ok().filter(|v| v.is_object() && !js_sys::Array::is_array(v))
}

fn member(object: &JsValue, name: &str) -> Field {
    let v = Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    if let Some(s) = v.as_string() {
        Field::Str(s)
    } else if let Some(n) = v.as_f64() {
        Field::Num(n)
    } else {
        Field::Absent
    }
}

/// An OAuth / VCC error body from JSON text; `None` if it is not a JSON object.
fn parse_oauth_body(text: &str) -> Option<OAuthBody> {
    let object = parse_object(text)?;
    Some(OAuthBody::from_fields(|name| member(&object, name)))
}

/// Whether an API 401 says the token is invalid or expired: the one case a new token
/// cures. Reads at most [`PROBE_CAP`] bytes of a clone, so the response can still go
/// back to the caller whole; a longer body is classified by its header alone.
pub async fn is_invalid_token(response: &Response) -> bool {
    let www = response.headers().get("www-authenticate").ok().flatten();
    let body = match response.clone() {
        Ok(probe) => read_capped(&probe, PROBE_CAP, None).await.ok().flatten(),
        Err(_) => None,
    };
    let body = body.as_deref().and_then(parse_oauth_body);
    classify_401(www.as_deref(), body.as_ref()) == Api401::InvalidToken
}

fn jwt_exp(token: &str) -> Option<f64> {
    let payload = atob(&jwt_payload_base64(token)?).ok()?;
    jwt_exp_from_field(member(&parse_object(&payload)?, "exp"))
}

/// `Date.parse` for HTTP-dates in `Retry-After`.
fn parse_http_date(value: &str) -> Option<u64> {
    let ms = js_sys::Date::parse(value);
    (ms.is_finite() && ms >= 0.0).then_some(ms as u64)
}

/// Gets a token for `scopes`, retrying network errors, 5xx and 429 per the policy.
///
/// Backoff sleeps keep a Node process alive, as the request itself does: a caller may
/// join a background refresh at any time (inside the hard margin), and an unref'd sleep
/// would let Node exit under its feet. Only idle refresh timers are unref'd.
pub async fn request_token(settings: &Settings, scopes: &ScopeSet) -> Result<Token, VccError> {
    let mut retry = 0;
    loop {
        let requested_at = now_ms();
        let (error, retryable) = match token_attempt(settings, scopes, requested_at).await {
            Ok(TokenAnswer::Token(t)) => return Ok(t),
            Ok(TokenAnswer::Failed { error, retryable }) => (error, retryable),
            Err(error) => {
                // Transport failures retry; a redirect never does.
                let retryable = error.code == ErrorCode::Network || error.code == ErrorCode::Timeout;
                (error, retryable)
            }
        };
        let error = error.scrub(settings.client_secret.expose());
        if !retryable {
            return Err(error);
        }
        match settings.retry.delay(retry, error.retry_after_ms, random()) {
            Some(ms) => sleep(ms).await,
            None => return Err(error),
        }
        retry += 1;
    }
}

fn js_err(_: JsValue) -> VccError {
    VccError::new(ErrorCode::Network, "the runtime refused to build the token request")
}

/// One attempt. `Err` is a transport failure (network, timeout, redirect); HTTP answers
/// of any status come back as a [`TokenAnswer`]. The deadline covers the whole exchange,
/// body included, and the body is capped.
async fn token_attempt(settings: &Settings, scopes: &ScopeSet, requested_at: u64) -> Result<TokenAnswer, VccError> {
    let tr = token_request(settings, scopes);
    let deadline = deadline(settings.timeout_ms);
    let sent = post_form(&tr.url, &tr.body, tr.basic_pair.as_deref().map(|p| p.as_str()), &deadline).map_err(js_err)?;
    drop(tr);

    let transport = |t: Transport| match t {
        Transport::Timeout => VccError::new(ErrorCode::Timeout, "the token endpoint did not answer within timeoutMs"),
        Transport::Network(_) => {
            VccError::new(ErrorCode::Network, "could not reach the token endpoint (network, DNS, TLS or CORS failure)")
        }
        Transport::Redirect(status) => {
            let mut e = VccError::new(
                ErrorCode::Redirect,
                "the token endpoint answered with a redirect; vcc-auth never follows one with credentials",
            );
            e.status = Some(status).filter(|s| *s != 0);
            e
        }
    };
    let response = await_upstream(Ok(sent), Some(&deadline)).await.map_err(transport)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| parse_retry_after(&v, now_ms(), parse_http_date));
    let text = read_capped(&response, TOKEN_BODY_CAP, Some(&deadline)).await.map_err(transport)?;
    let body = text.as_deref().and_then(parse_oauth_body);
    Ok(interpret_token_response(status, body, jwt_exp, retry_after, requested_at, settings.client_secret.expose()))
}
