//! HTTP through the global `fetch`: the token request with timeout and retries, and a
//! JSON helper that uses the host's `JSON.parse` (no JSON parser in the wasm).

use std::cell::Cell;
use std::rc::Rc;

use js_sys::JSON;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use super::js::{global_fetch, now_ms, random, sleep, Timer};
use crate::core::config::Settings;
use crate::core::error::{ErrorCode, VccError};
use crate::core::request::token_request;
use crate::core::scope::ScopeSet;
use crate::core::token::{
    interpret_token_response, jwt_payload, parse_retry_after, JwtClaims, OAuthBody, Token, TokenAnswer,
};

/// Parses JSON text into `T` with the host's parser; `None` if it is not JSON or not
/// of the right shape.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Option<T> {
    let value = JSON::parse(text).ok()?;
    serde_wasm_bindgen::from_value(value).ok()
}

fn jwt_exp(token: &str) -> Option<f64> {
    let payload = String::from_utf8(jwt_payload(token)?).ok()?;
    parse_json::<JwtClaims>(&payload)?.exp
}

/// Gets a token for `scopes`, retrying network errors, 5xx and 429 per the policy.
/// `background` requests (refresh-ahead) do not keep a Node process alive while they
/// back off.
pub async fn request_token(settings: &Settings, scopes: &ScopeSet, background: bool) -> Result<Token, VccError> {
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
            Some(ms) => sleep(ms, !background).await,
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
    if let Some(auth) = &tr.authorization {
        headers.set("authorization", auth).map_err(js_err)?;
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
    let retry_after =
        response.headers().get("retry-after").ok().flatten().and_then(|v| parse_retry_after(&v, now_ms()));
    let text = JsFuture::from(response.text().map_err(transport)?).await.map_err(transport)?;
    let body = text.as_string().and_then(|t| parse_json::<OAuthBody>(&t));
    Ok(interpret_token_response(status, body, jwt_exp, retry_after, requested_at))
}
