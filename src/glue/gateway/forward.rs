//! A request the core decided to forward, on its way to VCC and back: the rate limit,
//! the caller's body, the exchange (token, send, the 401 flow) under one deadline, and
//! VCC's answer through the allow-list.

use std::cell::OnceCell;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Request, Response};

use super::bindings::RateLimiter;
use super::context::{cors_for, Cx};
use super::inbound::{read_body, BodyBudget, Judged};
use crate::core::error::ErrorCode;
use crate::core::gateway::{
    answer_plan, hop_by_hop, needs_versioned_accept, AnswerPlan, Forward, GatewayConfig, Refusal, BODY_LIMIT,
    RESPONSE_BUFFER_LIMIT,
};
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::url::push_u64;
use crate::glue::http::{await_upstream, bearer, deadline, Transport};
use crate::glue::js::{console_error, prop, Obj};
use crate::glue::tokens::{exchange, ExchangeError, TokenSource};

// The per-request host work, one boundary crossing each (see host.js).
#[wasm_bindgen(module = "/src/glue/gateway/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = sendUpstream, catch)]
    #[allow(clippy::too_many_arguments)]
    fn send_upstream(
        request: &Request,
        url: &str,
        method: &str,
        forward: &JsValue,
        authorization: &str,
        accept: &str,
        body: Option<&Uint8Array>,
        signal: &AbortSignal,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = respondUpstream, catch)]
    #[allow(clippy::too_many_arguments)]
    fn respond_upstream(
        upstream: &Response,
        pass: &JsValue,
        drop: &str,
        extra: &str,
        plan: u32,
        length: f64,
        cap: u32,
        signal: &AbortSignal,
        keep_alive: &JsValue,
    ) -> Result<Promise, JsValue>;
}

/// What forwarding needs of the gateway.
pub struct Upstream<'a, S> {
    pub config: &'a GatewayConfig,
    pub tokens: &'a S,
    /// The core's header allow-lists as host Sets: request, response.
    pub forward_headers: &'a JsValue,
    pub pass_headers: &'a JsValue,
    /// The isolate's budget for request bodies.
    pub bodies: &'a BodyBudget,
}

/// Whether `key` (a key's id, or `person:<sub>`) is within its rate limit:
/// `GATEWAY_RATE_LIMIT.limit({key})`. No binding (or no caller), no limit. A binding
/// that fails lets the request through (with a line on the error log): a broken counter
/// must not take the gateway down.
pub async fn within_rate_limit(limiter: Option<&RateLimiter>, key: Option<&str>) -> bool {
    let (Some(limiter), Some(id)) = (limiter, key) else { return true };
    let options = Obj::new();
    options.set("key", id);
    let outcome = match limiter.limit(&options.0) {
        Ok(p) => JsFuture::from(p).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(o) => prop(&o, "success").as_bool() != Some(false),
        Err(_) => {
            console_error("{\"error\":\"rate_limit_unavailable\",\"message\":\"GATEWAY_RATE_LIMIT.limit failed; the request was let through\"}");
            true
        }
    }
}

/// Reads the caller's body, then runs the exchange with VCC (token, send, the 401
/// flow) under one deadline, and streams VCC's answer back.
pub async fn forward<S: TokenSource<Key = ScopeSet>>(
    cx: &mut Cx,
    up: &Upstream<'_, S>,
    f: Forward,
) -> Result<Response, JsValue> {
    let config = up.config;
    let method = cx.facts.method.as_str();
    // The body, and its share of the isolate's budget, held until this function returns.
    let (body, _held) = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        (None, None)
    } else {
        // The core has checked that a declared length is a number within the limit.
        let declared = cx.facts.header(Judged::ContentLength).and_then(|n| n.trim().parse().ok());
        match read_body(&cx.request, declared, BODY_LIMIT, config.body_timeout_ms, up.bodies).await {
            Ok((b, held)) => (b, Some(held)),
            Err(Refusal::GatewayBusy) => {
                return cx.refuse_with(Refusal::GatewayBusy, vec![("retry-after", "1".into())])
            }
            Err(r) => return cx.refuse(r),
        }
    };
    // One deadline for the whole exchange with VCC, from the first send: both
    // attempts, and the answer's body while it streams to the caller. It starts at
    // the send, not before the token: a slow token endpoint has its own timeout, and
    // must not spend the API's budget (a late token would then be a 504 unsent).
    let started: OnceCell<AbortSignal> = OnceCell::new();
    let deadline = || started.get_or_init(|| deadline(config.upstream_timeout_ms));
    let outcome = {
        let accept = if needs_versioned_accept(cx.facts.header(Judged::Accept)) { f.accept } else { "" };
        let (request, method, forward) = (&cx.request, cx.facts.method.as_str(), up.forward_headers);
        let send = async |token: &AccessToken| {
            let deadline = deadline();
            let promise =
                send_upstream(request, &f.upstream, method, forward, &bearer(token), accept, body.as_ref(), deadline);
            await_upstream(promise, Some(deadline)).await.map_err(|t| match t {
                Transport::Timeout => Refusal::UpstreamTimeout,
                Transport::Network(_) => Refusal::UpstreamUnreachable,
                Transport::Redirect(_) => Refusal::UpstreamRedirect,
            })
        };
        // Whose 401s these are: the key's id or the person (the storm brake keeps them
        // with it).
        let caller = cx.caller_id().unwrap_or_default();
        exchange(up.tokens, &f.scope, &caller, &cx.keep_alive, send).await
    };
    let (upstream, cache, via) = match outcome {
        Ok(answer) => answer,
        Err(ExchangeError::Token(e)) => {
            cx.detail = Some(e.code.as_str());
            if e.code != ErrorCode::TokenRejected {
                return cx.refuse(Refusal::TokenFailed);
            }
            let mut retry_after = String::new();
            push_u64(&mut retry_after, e.retry_after_ms.unwrap_or(0).div_ceil(1000).max(1));
            return cx.refuse_with(Refusal::TokenRejected, vec![("retry-after", retry_after)]);
        }
        Err(ExchangeError::Send(r)) => return cx.refuse(r),
    };
    cx.cache = Some(cache);
    cx.via = Some(via);
    let head = upstream.headers();
    let header = |name: &str| head.get(name).ok().flatten();
    let drop = hop_by_hop(header("connection").as_deref());
    // What `respondUpstream` is told to do with the body: 0 whole, 1 probe, 2 stream
    // with `length` (see `AnswerPlan`).
    let (plan, length) = match answer_plan(header("content-length").as_deref(), header("content-encoding").as_deref()) {
        AnswerPlan::Whole => (0, f64::NAN),
        AnswerPlan::Probe => (1, f64::NAN),
        AnswerPlan::Stream(n) => (2, n as f64),
    };
    let mut extra = String::new();
    for (k, v) in cors_for(&cx.origin) {
        extra.push_str(k);
        extra.push('\n');
        extra.push_str(&v);
        extra.push('\n');
    }
    let deadline = deadline();
    let keep_alive = cx.keep_alive.as_js();
    let cap = RESPONSE_BUFFER_LIMIT;
    let answer = respond_upstream(&upstream, up.pass_headers, &drop, &extra, plan, length, cap, deadline, &keep_alive)?;
    match JsFuture::from(answer).await {
        Ok(response) => Ok(response.unchecked_into()),
        // Only a body read (whole, or its first part) can fail here: at the deadline, or
        // cut off.
        Err(_) if deadline.aborted() => cx.refuse(Refusal::UpstreamTimeout),
        Err(_) => cx.refuse(Refusal::UpstreamIncomplete),
    }
}
