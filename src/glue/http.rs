//! HTTP through the global `fetch`: the token request with timeout and retries, and a
//! JSON helper that uses the host's `JSON.parse` (no JSON parser in the wasm).

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use crate::core::token::{classify_401, Api401};

use super::js::{atob, btoa, global_fetch, now_ms, random, sleep, Timer};
use crate::core::config::Settings;
use crate::core::error::{ErrorCode, VccError};
use crate::core::request::token_request;
use crate::core::scope::ScopeSet;
use crate::core::token::{
    interpret_token_response, jwt_exp_from_field, jwt_payload_base64, parse_retry_after, Field, OAuthBody, Token,
    TokenAnswer,
};

/// Parses JSON text with the host's `JSON.parse`; `None` unless it is a JSON object.
fn parse_object(text: &str) -> Option<JsValue> {
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
/// cures (client and gateway alike). Reads a clone, so the response can still be
/// returned to the caller as it is.
pub async fn is_invalid_token(response: &Response) -> bool {
    let www = response.headers().get("www-authenticate").ok().flatten();
    let body = match response.clone().ok().and_then(|probe| probe.text().ok()) {
        Some(text) => JsFuture::from(text).await.ok().and_then(|t| t.as_string()).and_then(|t| parse_oauth_body(&t)),
        None => None,
    };
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

/// One attempt. `Err` is a transport failure (network or timeout); HTTP answers of any
/// status come back as a [`TokenAnswer`].
async fn token_attempt(settings: &Settings, scopes: &ScopeSet, requested_at: u64) -> Result<TokenAnswer, VccError> {
    let tr = token_request(settings, scopes);
    let headers = Headers::new().map_err(js_err)?;
    headers.set("content-type", "application/x-www-form-urlencoded").map_err(js_err)?;
    headers.set("accept", "application/json").map_err(js_err)?;
    if let Some(pair) = &tr.basic_pair {
        let mut auth = zeroize::Zeroizing::new(String::from("Basic "));
        auth.push_str(&btoa(pair).map_err(js_err)?);
        headers.set("authorization", &auth).map_err(js_err)?;
    }
    let controller = AbortController::new().map_err(js_err)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&tr.body));
    init.set_signal(Some(&controller.signal()));
    let request = Request::new_with_str_and_init(&tr.url, &init).map_err(js_err)?;
    drop(tr);

    let timed_out = Rc::new(Cell::new(false));
    let _deadline = {
        let timed_out = timed_out.clone();
        Timer::new(u64::from(settings.timeout_ms), true, move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    let transport = |_| {
        if timed_out.get() {
            VccError::new(ErrorCode::Timeout, "the token endpoint did not answer within timeoutMs")
        } else {
            VccError::new(ErrorCode::Network, "could not reach the token endpoint (network, DNS, TLS or CORS failure)")
        }
    };
    let promise = global_fetch(&request).map_err(transport)?;
    let response: Response = JsFuture::from(promise).await.map_err(transport)?.unchecked_into();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| parse_retry_after(&v, now_ms(), parse_http_date));
    let text = JsFuture::from(response.text().map_err(transport)?).await.map_err(transport)?;
    let body = text.as_string().and_then(|t| parse_oauth_body(&t));
    Ok(interpret_token_response(status, body, jwt_exp, retry_after, requested_at))
}
