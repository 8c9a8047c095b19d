//! `VccClient.fetch`: a VCC API call with the bearer token and the versioned `Accept`,
//! through the 401 flow (`exchange`).

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use web_sys::{Request, Response};

use super::options::opt_string;
use super::tokens::Inner;
use crate::core::error::{ErrorCode, VccError};
use crate::core::routes::{self, RouteMatch, DEFAULT_ACCEPT};
use crate::core::secret::AccessToken;
use crate::glue::http::{await_upstream, bearer, Transport};
use crate::glue::js::{prop, to_js_error, KeepAlive};
use crate::glue::tokens::{exchange, ExchangeError};

// The API call's request and each attempt's copy (see host.js for why they are JS).
#[wasm_bindgen(module = "/src/glue/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = apiRequest, catch)]
    fn api_request(url: &str, init: &JsValue) -> Result<Request, JsValue>;
    #[wasm_bindgen(js_name = sendApi, catch)]
    fn send_api_js(request: &Request, authorization: &str, accept: &str) -> Result<Promise, JsValue>;
}

pub(super) async fn api_fetch(inner: Rc<Inner>, input: JsValue, init: JsValue) -> Result<JsValue, JsValue> {
    let err = |e: VccError| to_js_error(&e);
    let input = if let Some(s) = input.as_string() {
        s
    } else if input.is_instance_of::<Request>() {
        return Err(err(VccError::config(
            "input",
            "must be a path or URL string, not a Request (its body could not be replayed on retry)",
        )));
    } else {
        prop(&input, "href")
            .as_string()
            .ok_or_else(|| err(VccError::config("input", "must be a path or URL string")))?
    };
    let target = inner.settings.api_base.resolve(&input).map_err(|p| err(VccError::config("input", p)))?;
    let url = inner.settings.api_base.join(&target.path_and_query());
    let request = api_request(&url, &init).map_err(|_| err(VccError::config("init", "is not a valid RequestInit")))?;
    let method = request.method();
    let scope_override = if init.is_object() {
        opt_string(&init, "scope").map_err(|_| err(VccError::config("init.scope", "must be a string")))?
    } else {
        None
    };
    let (scope, accept) = match (scope_override, routes::lookup(&method, &target.path)) {
        (Some(s), RouteMatch::Found(r)) => (s, r.accept),
        (Some(s), _) => (s, DEFAULT_ACCEPT),
        (None, RouteMatch::Found(r)) => (r.scope.to_string(), r.accept),
        (None, _) => {
            let mut m = String::from("init.scope is required: no known VCC route for ");
            m.push_str(&method);
            m.push(' ');
            m.push_str(&target.path);
            return Err(err(VccError::new(ErrorCode::InvalidConfig, m)));
        }
    };
    let key = inner.key_for(&scope).map_err(err)?;
    let send = async |token: &AccessToken| send_api(&request, token, accept).await;
    match exchange(&inner, &key, "", &KeepAlive::none(), send).await {
        Ok((response, _, _)) => Ok(response.into()),
        Err(ExchangeError::Token(e)) => Err(err(e)),
        Err(ExchangeError::Send(e)) => Err(e),
    }
}

/// One attempt (see `sendApi`); the caller's request is copied, never sent itself.
async fn send_api(request: &Request, token: &AccessToken, accept: &str) -> Result<Response, JsValue> {
    let sent = send_api_js(request, &bearer(token), accept)
        .map_err(|_| to_js_error(&VccError::config("init", "has a body that cannot be sent (already used?)")))?;
    await_upstream(Ok(sent), None).await.map_err(|t| match t {
        // The caller's own abort rejects as plain `fetch` does, with the signal's reason
        // (`AbortError`, `TimeoutError` from `AbortSignal.timeout`, or its own value):
        // the reason, not the runtime's error, which may carry detail.
        Transport::Network(_) if request.signal().aborted() => request.signal().reason(),
        Transport::Network(e) => transport_error(&e),
        // No deadline of ours is given to `await_upstream` here (the caller's signal is
        // the caller's), so this arm is for completeness.
        Transport::Timeout => to_js_error(&VccError::new(ErrorCode::Timeout, "the VCC API did not answer in time")),
        Transport::Redirect(status) => {
            let mut e = VccError::new(
                ErrorCode::Redirect,
                "the VCC API answered with a redirect; vcc-auth does not follow it, so the token goes nowhere else",
            );
            e.status = Some(status).filter(|s| *s != 0);
            to_js_error(&e)
        }
    })
}

/// A caller's abort stays an `AbortError` (as with plain `fetch`); anything else is a
/// `VccError` with code `network` and no detail from the runtime (which may quote URLs).
fn transport_error(e: &JsValue) -> JsValue {
    if prop(e, "name").as_string().as_deref() == Some("AbortError") {
        return e.clone();
    }
    to_js_error(&VccError::new(ErrorCode::Network, "could not reach the VCC API (network, DNS, TLS or CORS failure)"))
}
