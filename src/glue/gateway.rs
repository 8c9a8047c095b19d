//! `Gateway`: the edge gateway's I/O in workerd. Every decision comes from
//! `crate::core::gateway` (policy) and `crate::core::cache` (tokens); this file reads
//! the request, performs the plan, and writes one log line per request.
//!
//! workerd rules that shape it:
//! - No I/O outside a request: refresh-ahead is lazy and runs through `ctx.waitUntil`.
//! - Work a request started is cancelled when it ends unless kept alive: the request
//!   that starts a token fetch hands it to its `ctx.waitUntil`.
//! - Code must run in the I/O context of the request it serves. A Rust waker (oneshot)
//!   fired by request A's token fetch would make wasm-bindgen-futures poll request B's
//!   task inside A's context, and B's stream I/O then fails ("Cannot perform I/O on
//!   behalf of a different request") or hangs. So requests never share a Rust future:
//!   a waiter creates a JS Promise in its own context and registers its `resolve` in
//!   the cache; the fetch calls it, and workerd resumes the waiter in its own context.
//! - Waiters give up after a timeout by abandoning the flight, which wakes all its
//!   waiters to re-plan: one of them starts a new fetch, the rest wait on that.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Promise, Reflect, Uint8Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{AbortSignal, Headers, ReadableStreamDefaultReader, Request, Response, ResponseInit};

use super::broker::{self, BrokerTokens};
use super::http::{await_upstream, bearer, collect, deadline, next_chunk, request_token, Collected, Transport};
use super::js::{console_error, console_log, now_ms, to_js_error, Obj, Timer};
use super::tokens::{exchange, CacheUse, ExchangeError, Lease, TokenSource};
use crate::core::cache::{FlightId, Info, Plan, TokenCache};
use crate::core::error::{ErrorCode, VccError};
use crate::core::gateway::{
    cors_headers, header_list, health_json_about, hop_by_hop, log_json, misconfigured_json, needs_versioned_accept,
    preflight_headers, read_whole, split_request_url, Decision, Field, Forward, GatewayConfig, GatewayEnv, HealthAbout,
    Inbound, JsonRows, LogLine, Misconfigured, OriginCheck, Refusal, BODY_LIMIT, FORWARD_REQUEST_HEADERS,
    FORWARD_RESPONSE_HEADERS,
};
use crate::core::scope::ScopeSet;
use crate::core::secret::{AccessToken, ClientSecret};
use crate::core::url::push_u64;

/// How long a request waits on a token fetch another request started before it
/// abandons it and starts its own (the token request itself times out after 10 s).
const JOIN_TIMEOUT_MS: u64 = 12_000;

// The per-request host work, one boundary crossing each (see the file's header).
#[wasm_bindgen(module = "/src/glue/gateway_host.js")]
extern "C" {
    #[wasm_bindgen(js_name = headerSet)]
    fn header_set(list: &str) -> JsValue;
    #[wasm_bindgen(js_name = requestFacts)]
    fn request_facts(request: &Request) -> String;
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
    fn respond_upstream(
        upstream: &Response,
        pass: &JsValue,
        drop: &str,
        extra: &str,
        whole: bool,
        signal: &AbortSignal,
        ctx: &JsValue,
    ) -> Result<Promise, JsValue>;
}

/// What a request is judged by, from [`request_facts`]' lines.
struct Facts {
    method: String,
    url: String,
    /// origin, authorization, content-length, access-control-request-method, accept.
    headers: [Option<String>; 5],
}

impl Facts {
    fn read(request: &Request) -> Facts {
        let text = request_facts(request);
        let mut lines = text.split('\n');
        let method = lines.next().unwrap_or_default().to_owned();
        let url = lines.next().unwrap_or_default().to_owned();
        let headers = std::array::from_fn(|_| lines.next().and_then(|l| l.strip_prefix(':')).map(str::to_owned));
        Facts { method, url, headers }
    }

    fn header(&self, i: usize) -> Option<&str> {
        self.headers.get(i).and_then(Option::as_deref)
    }
}

struct Inner {
    /// What a well-configured gateway works with, or the setting that is wrong.
    setup: Result<Setup, Misconfigured>,
    assets: Option<JsValue>,
    /// The Workers Rate Limiting binding `GATEWAY_RATE_LIMIT` and its `limit`, if bound.
    rate_limit: Option<(JsValue, Function)>,
    /// The core's header allow-lists as host Sets, made once: request, response.
    forward_headers: JsValue,
    pass_headers: JsValue,
}

struct Setup {
    config: Rc<GatewayConfig>,
    /// Where requests get their tokens: the seam. The isolate's own cache, or the
    /// fleet's broker (with the isolate's cache as its fallback); the request path is
    /// the same for both.
    tokens: Tokens,
}

/// The two token sources, chosen once per isolate by whether `TOKEN_BROKER` is bound.
enum Tokens {
    Isolate(Rc<IsolateTokens>),
    Broker(Rc<BrokerTokens>),
}

impl Tokens {
    fn mode(&self) -> &'static str {
        match self {
            Self::Isolate(_) => "isolate",
            Self::Broker(_) => "broker",
        }
    }
}

impl TokenSource for Tokens {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, ctx: &JsValue) -> Result<Lease, VccError> {
        match self {
            Self::Isolate(t) => t.token(scope, ctx).await,
            Self::Broker(t) => t.token(scope, ctx).await,
        }
    }

    fn reject(&self, scope: &ScopeSet, token: &AccessToken) {
        match self {
            Self::Isolate(t) => t.reject(scope, token),
            Self::Broker(t) => t.reject(scope, token),
        }
    }

    fn confirm(&self, scope: &ScopeSet, token: &AccessToken, ctx: &JsValue) {
        match self {
            Self::Isolate(t) => t.confirm(scope, token, ctx),
            Self::Broker(t) => t.confirm(scope, token, ctx),
        }
    }

    fn health(&self) -> Vec<(ScopeSet, Info)> {
        match self {
            Self::Isolate(t) => t.health(),
            Self::Broker(t) => t.health(),
        }
    }
}

/// The isolate's token cache, as a [`TokenSource`] keyed by scope set. See the module
/// docs for how single-flight survives workerd's request boundaries. The broker object
/// runs one too, for its scope set.
pub(super) struct IsolateTokens {
    pub(super) config: Rc<GatewayConfig>,
    /// Waiters are the `resolve` functions of promises each waiting request created.
    pub(super) cache: RefCell<TokenCache<ScopeSet, Function>>,
}

/// The edge gateway: `new Gateway(env)` once per isolate, then
/// `gateway.fetch(request, ctx)` per request. Holds data only (tokens and expiry),
/// never a Request, Response or stream across requests.
#[wasm_bindgen]
pub struct Gateway {
    inner: Rc<Inner>,
}

fn env_string(env: &JsValue, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name)).ok().and_then(|v| v.as_string()).filter(|s| !s.trim().is_empty())
}

/// A JSON setting (`GATEWAY_KEYS`, `GATEWAY_ROUTES`) through the host's JSON parser,
/// shaped for the core to judge: rows of flat members.
fn json_rows(text: &str) -> JsonRows {
    let Ok(value) = JSON::parse(text) else { return JsonRows::NotJson };
    if !js_sys::Array::is_array(&value) {
        return if value.is_object() { JsonRows::Object } else { JsonRows::NotArray };
    }
    let rows: js_sys::Array = value.unchecked_into();
    JsonRows::Rows(
        rows.iter()
            .map(|row| {
                if !row.is_object() || js_sys::Array::is_array(&row) {
                    return None;
                }
                let members = Object::entries(row.unchecked_ref::<Object>());
                Some(
                    members
                        .iter()
                        .filter_map(|pair| {
                            let pair: js_sys::Array = pair.unchecked_into();
                            Some((pair.get(0).as_string()?, field(&pair.get(1))))
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

fn field(v: &JsValue) -> Field {
    if let Some(t) = v.as_string() {
        return Field::Text(t);
    }
    if js_sys::Array::is_array(v) {
        let list: js_sys::Array = v.clone().unchecked_into();
        if let Ok(items) = list.iter().map(|s| s.as_string().ok_or(())).collect::<Result<Vec<_>, _>>() {
            return Field::List(items);
        }
    }
    Field::Other
}

/// The log's word for how a request's token was had.
fn cache_word(c: CacheUse) -> &'static str {
    match c {
        CacheUse::Hit => "hit",
        CacheUse::Miss => "miss",
        CacheUse::Refreshed => "refreshed",
    }
}

fn respond(status: u16, body: &str, extra: &[(&'static str, String)]) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    for (k, v) in extra {
        headers.set(k, v)?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(body), &init)
}

fn cors_for(origin: &OriginCheck) -> Vec<(&'static str, String)> {
    match origin {
        OriginCheck::Allowed(o) => cors_headers(o).to_vec(),
        _ => Vec::new(),
    }
}

/// What the log line says a request was for.
enum Served {
    /// Refused before it was routed.
    Nothing,
    /// `/healthz`.
    Health,
    /// The static page.
    Assets,
    /// A VCC API: the matched route's prefix (never the path or query).
    Api(Cow<'static, str>),
}

impl Served {
    fn as_str(&self) -> &str {
        match self {
            Self::Nothing => "",
            Self::Health => "/healthz",
            Self::Assets => "assets",
            Self::Api(prefix) => prefix,
        }
    }
}

/// One request on its way through the gateway: what it is, and what its one log line
/// will say. Every step reads and notes through it, so nothing is threaded as an
/// out-parameter.
struct Cx {
    request: Request,
    /// Method, URL and the judged headers, read once.
    facts: Facts,
    /// workerd's `ExecutionContext` (for `waitUntil`).
    ctx: JsValue,
    origin: OriginCheck,
    served: Served,
    /// The id of the key that asked, once known (never the key or its digest).
    key: Option<String>,
    scope: Option<ScopeSet>,
    cache: Option<CacheUse>,
    /// Where the token came from (`Lease::via`).
    via: Option<&'static str>,
    /// A code: the refusal's, or the more precise one of what caused it.
    detail: Option<&'static str>,
}

impl Cx {
    fn new(request: Request, ctx: JsValue) -> Self {
        Cx {
            facts: Facts::read(&request),
            request,
            ctx,
            origin: OriginCheck::None,
            served: Served::Nothing,
            key: None,
            scope: None,
            cache: None,
            via: None,
            detail: None,
        }
    }

    /// Answers with refusal `r` (CORS headers when the origin is allowed), noting its
    /// code unless a more precise one is already noted.
    fn refuse(&mut self, r: Refusal) -> Result<Response, JsValue> {
        self.refuse_with(r, Vec::new())
    }

    fn refuse_with(&mut self, r: Refusal, mut extra: Vec<(&'static str, String)>) -> Result<Response, JsValue> {
        self.detail.get_or_insert(r.code());
        extra.extend(cors_for(&self.origin));
        respond(r.status(), &r.json(), &extra)
    }

    /// The request's JSON log line: no token, key, secret, path or query.
    fn log(&self, status: u16, ms: u64) {
        console_log(&log_json(&LogLine {
            method: &self.facts.method,
            route: self.served.as_str(),
            status,
            ms,
            key: self.key.as_deref(),
            scope: self.scope.as_ref().map(ScopeSet::as_str),
            cache: self.cache.map_or("-", cache_word),
            tokens: self.via.unwrap_or("-"),
            detail: self.detail,
        }));
    }
}

/// Reads the request body, counting as it streams, refusing past `limit` (413) or past
/// `timeout_ms` (408: a body trickling in must not hold a connection for ever).
/// Buffered (at most 1 MiB) so it can be replayed once after a 401 `invalid_token`.
async fn read_limited(request: &Request, limit: u64, timeout_ms: u32) -> Result<Option<Uint8Array>, Refusal> {
    let Some(stream) = request.body() else { return Ok(None) };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    // On time-out the reader is cancelled, which ends the pending read as "done".
    let timed_out = Rc::new(std::cell::Cell::new(false));
    let _deadline = {
        let (timed_out, reader) = (timed_out.clone(), reader.clone());
        Timer::new(u64::from(timeout_ms), true, move || {
            timed_out.set(true);
            let _ = reader.cancel();
        })
    };
    let collected = collect(&reader, limit).await;
    if timed_out.get() {
        return Err(Refusal::BodyTimeout);
    }
    match collected.map_err(|_| Refusal::BadRequest)? {
        Collected::Whole(body) => Ok(Some(body)),
        Collected::Over(total) => {
            drain(&reader, total).await;
            Err(if timed_out.get() { Refusal::BodyTimeout } else { Refusal::BodyTooLarge })
        }
    }
}

/// Reads and discards the rest of a refused body, up to [`DRAIN_LIMIT`] in all, then
/// cancels. Answering 413 with the body half read leaves the client's keep-alive
/// connection stuck (measured: the next request on it hangs), so a moderately
/// oversized body is drained; an endless one is cut off, a slow one by the body timeout.
async fn drain(reader: &ReadableStreamDefaultReader, mut total: u64) {
    while total <= DRAIN_LIMIT {
        match next_chunk(reader).await {
            Ok(Some(c)) => total += u64::from(c.length()),
            _ => return,
        }
    }
    let _ = reader.cancel();
}

/// How much of a refused body is read and thrown away (see [`drain`]).
const DRAIN_LIMIT: u64 = 16 << 20;

pub(super) fn wait_until(ctx: &JsValue, promise: &Promise) {
    if let Ok(f) = Reflect::get(ctx, &"waitUntil".into()) {
        if let Some(f) = f.dyn_ref::<Function>() {
            let _ = f.call1(ctx, promise);
        }
    }
}

#[wasm_bindgen]
impl Gateway {
    /// Reads and validates the settings from the Worker's `env`. Never throws: with a
    /// bad setting every request gets 500 `gateway_misconfigured` naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(env: JsValue) -> Gateway {
        let setup = read_env(&env).map(|config| {
            let config = Rc::new(config);
            let cache = RefCell::new(TokenCache::new(config.settings.margins));
            let isolate = Rc::new(IsolateTokens { config: config.clone(), cache });
            let tokens = match broker::namespace(&env) {
                Some(ns) => Tokens::Broker(Rc::new(BrokerTokens::new(ns, config.clone(), isolate))),
                None => Tokens::Isolate(isolate),
            };
            Setup { tokens, config }
        });
        if let Err(m) = &setup {
            console_error(&misconfigured_json(m));
        }
        let binding = |name: &str| Reflect::get(&env, &name.into()).ok().filter(JsValue::is_object);
        let assets = binding("ASSETS");
        let rate_limit = binding("GATEWAY_RATE_LIMIT").and_then(|b| {
            let limit = Reflect::get(&b, &"limit".into()).ok()?.dyn_into::<Function>().ok()?;
            Some((b, limit))
        });
        let forward_headers = header_set(&header_list(FORWARD_REQUEST_HEADERS));
        let pass_headers = header_set(&header_list(FORWARD_RESPONSE_HEADERS));
        Gateway { inner: Rc::new(Inner { setup, assets, rate_limit, forward_headers, pass_headers }) }
    }

    /// Handles one request; always resolves to a Response.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        request: Request,
        #[wasm_bindgen(unchecked_param_type = "ExecutionContext")] ctx: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { inner.handle(request, ctx).await.map(Into::into) })
    }
}

/// The gateway's settings from the Worker's `env` (the broker object reads the same).
pub(super) fn read_env(env: &JsValue) -> Result<GatewayConfig, Misconfigured> {
    let env = env.clone();
    {
        let genv = GatewayEnv {
            region: env_string(&env, "VCC_REGION"),
            client_id: env_string(&env, "VCC_CLIENT_ID"),
            client_secret: env_string(&env, "VCC_CLIENT_SECRET").map(ClientSecret::new),
            auth_base_url: env_string(&env, "VCC_AUTH_BASE_URL"),
            api_base_url: env_string(&env, "VCC_API_BASE_URL"),
            allowed_origins: env_string(&env, "ALLOWED_ORIGINS"),
            gateway_keys: env_string(&env, "GATEWAY_KEYS").map(|t| json_rows(&t)),
            gateway_routes: env_string(&env, "GATEWAY_ROUTES").map(|t| json_rows(&t)),
            rate_limit_period: env_string(&env, "GATEWAY_RATE_LIMIT_PERIOD"),
            upstream_timeout_ms: env_string(&env, "UPSTREAM_TIMEOUT_MS"),
            body_timeout_ms: env_string(&env, "BODY_TIMEOUT_MS"),
            refresh_ahead_ms: env_string(&env, "REFRESH_AHEAD_MS"),
            expiry_margin_ms: env_string(&env, "EXPIRY_MARGIN_MS"),
        };
        genv.validate()
    }
}

impl Inner {
    async fn handle(self: Rc<Self>, request: Request, ctx: JsValue) -> Result<Response, JsValue> {
        let started = now_ms();
        let mut cx = Cx::new(request, ctx);
        let response = self.serve(&mut cx).await?;
        cx.log(response.status(), now_ms() - started);
        Ok(response)
    }

    /// Asks the core what to do with the request, and does it.
    async fn serve(self: &Rc<Self>, cx: &mut Cx) -> Result<Response, JsValue> {
        let setup = match &self.setup {
            Ok(s) => s,
            Err(m) => {
                cx.detail = Some(Refusal::Misconfigured.code());
                return respond(Refusal::Misconfigured.status(), &misconfigured_json(m), &[]);
            }
        };
        let decision = {
            let f = &cx.facts;
            let Some((self_origin, path, query)) = split_request_url(&f.url) else {
                return cx.refuse(Refusal::PathNotPlain);
            };
            setup.config.judge(&Inbound {
                method: &f.method,
                path,
                query,
                self_origin,
                origin: f.header(0),
                authorization: f.header(1),
                content_length: f.header(2),
                preflight_method: f.header(3),
                now_ms: now_ms(),
            })
        };
        let (decision, key) = decision;
        cx.key = key.and_then(|k| setup.config.key_id(k)).map(str::to_owned);
        match decision {
            Decision::Refuse(r, origin) => {
                cx.origin = origin;
                cx.refuse(r)
            }
            Decision::Preflight(origin) => {
                let out = Headers::new()?;
                for (k, v) in &preflight_headers(&origin) {
                    out.set(k, v)?;
                }
                let init = ResponseInit::new();
                init.set_status(204);
                init.set_headers(&out);
                Response::new_with_opt_str_and_init(None, &init)
            }
            Decision::Health => {
                cx.served = Served::Health;
                let mut scopes = setup.tokens.health();
                scopes.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                let scopes: Vec<_> = scopes.iter().map(|(k, info)| (k.as_str(), info.clone())).collect();
                let about = HealthAbout {
                    tokens: setup.tokens.mode(),
                    broker_error: match &setup.tokens {
                        Tokens::Broker(b) => b.last_error(),
                        Tokens::Isolate(_) => None,
                    },
                    rate_limit: self.rate_limit.is_some(),
                    keys: setup.config.key_list().collect(),
                };
                respond(200, &health_json_about(now_ms(), &scopes, &about), &[])
            }
            Decision::Static => match &self.assets {
                Some(assets) => {
                    cx.served = Served::Assets;
                    let fetch = Reflect::get(assets, &"fetch".into())?;
                    let fetch: &Function = fetch.dyn_ref().ok_or_else(|| JsValue::from_str("ASSETS.fetch"))?;
                    let promise: Promise = fetch.call1(assets, &cx.request)?.unchecked_into();
                    Ok(JsFuture::from(promise).await?.unchecked_into())
                }
                None => cx.refuse(Refusal::RouteNotFound),
            },
            Decision::Forward(f, origin) => {
                cx.origin = origin;
                cx.served = Served::Api(f.route.clone());
                cx.scope = Some(f.scope.clone());
                if !self.within_rate_limit(cx).await {
                    let mut retry_after = String::new();
                    push_u64(&mut retry_after, u64::from(setup.config.rate_limit_period_s));
                    return cx.refuse_with(Refusal::RateLimited, vec![("retry-after", retry_after)]);
                }
                self.forward(cx, setup, f).await
            }
        }
    }

    /// Whether the request's key is within its rate limit: `GATEWAY_RATE_LIMIT.limit({key:
    /// id})`. No binding, no limit. A binding that fails lets the request through
    /// (with a line on the error log): a broken counter must not take the gateway down.
    async fn within_rate_limit(&self, cx: &Cx) -> bool {
        let (Some((limiter, limit)), Some(id)) = (&self.rate_limit, &cx.key) else { return true };
        let ask = || -> Result<Promise, JsValue> {
            let options = Obj::new();
            options.set("key", id.as_str());
            Ok(limit.call1(limiter, &options.0)?.unchecked_into())
        };
        let outcome = match ask() {
            Ok(p) => JsFuture::from(p).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(o) => Reflect::get(&o, &"success".into()).map_or(true, |s| s.as_bool() != Some(false)),
            Err(_) => {
                console_error("{\"error\":\"rate_limit_unavailable\",\"message\":\"GATEWAY_RATE_LIMIT.limit failed; the request was let through\"}");
                true
            }
        }
    }

    /// Reads the caller's body, then runs the exchange with VCC (token, send, the 401
    /// flow) under one deadline, and streams VCC's answer back.
    async fn forward(&self, cx: &mut Cx, setup: &Setup, f: Forward) -> Result<Response, JsValue> {
        let config = &setup.config;
        let body = if cx.facts.method.eq_ignore_ascii_case("GET") || cx.facts.method.eq_ignore_ascii_case("HEAD") {
            None
        } else {
            match read_limited(&cx.request, BODY_LIMIT, config.body_timeout_ms).await {
                Ok(b) => b,
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
            let accept = if needs_versioned_accept(cx.facts.header(4)) { f.accept } else { "" };
            let (request, method, forward) = (&cx.request, cx.facts.method.as_str(), &self.forward_headers);
            let send = async |token: &AccessToken| {
                let deadline = deadline();
                let promise = send_upstream(
                    request,
                    &f.upstream,
                    method,
                    forward,
                    &bearer(token),
                    accept,
                    body.as_ref(),
                    deadline,
                );
                await_upstream(promise, Some(deadline)).await.map_err(|t| match t {
                    Transport::Timeout => Refusal::UpstreamTimeout,
                    Transport::Network(_) => Refusal::UpstreamUnreachable,
                    Transport::Redirect(_) => Refusal::UpstreamRedirect,
                })
            };
            exchange(&setup.tokens, &f.scope, &cx.ctx, send).await
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
        let whole = read_whole(header("content-length").as_deref(), header("content-encoding").as_deref());
        let mut extra = String::new();
        for (k, v) in cors_for(&cx.origin) {
            extra.push_str(k);
            extra.push('\n');
            extra.push_str(&v);
            extra.push('\n');
        }
        let deadline = deadline();
        let answer = respond_upstream(&upstream, &self.pass_headers, &drop, &extra, whole, deadline, &cx.ctx)?;
        match JsFuture::from(answer).await {
            Ok(response) => Ok(response.unchecked_into()),
            // Only a body read whole can fail here: at the deadline, or cut off.
            Err(_) if deadline.aborted() => cx.refuse(Refusal::UpstreamTimeout),
            Err(_) => cx.refuse(Refusal::UpstreamIncomplete),
        }
    }
}

impl IsolateTokens {
    /// A token for `scope` and whether it came from the cache. See the module docs for
    /// how single-flight survives workerd's request boundaries.
    pub(super) async fn lease(self: &Rc<Self>, scope: &ScopeSet, ctx: &JsValue) -> Result<Lease, VccError> {
        let current = |tokens: &IsolateTokens| {
            tokens
                .cache
                .borrow()
                .current(scope)
                .map(|(t, _)| Lease { token: t.value.clone(), cached: true, via: "isolate" })
                .ok_or_else(|| VccError::new(ErrorCode::TokenEndpoint, "no token after a successful plan"))
        };
        // Two rounds at most: the second after abandoning a flight that did not answer.
        for _ in 0..2 {
            let plan = self.cache.borrow_mut().get(scope, now_ms());
            let (id, own) = match plan {
                Plan::Use => return current(self),
                Plan::UseAndRefresh(id) => {
                    self.start_flight(scope, id, ctx);
                    return current(self);
                }
                Plan::Fetch(id) => (id, true),
                Plan::Wait(id) => (id, false),
                Plan::Cooldown(until) => {
                    let mut e = VccError::new(ErrorCode::TokenRejected, "VCC rejected the tokens it just issued");
                    e.retry_after_ms = Some(until.saturating_sub(now_ms()));
                    return Err(e);
                }
            };
            let Some(answer) = self.join(scope, id, own, ctx).await else { continue };
            if let Some(token) = answer.as_string() {
                return Ok(Lease { token: AccessToken::new(token), cached: false, via: "isolate" });
            }
            if answer.is_undefined() {
                continue;
            }
            let code = Reflect::get(&answer, &"code".into()).ok().and_then(|c| c.as_string()).unwrap_or_default();
            let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::TokenEndpoint);
            return Err(VccError::new(code, "the token request failed"));
        }
        Err(VccError::new(ErrorCode::Timeout, "no token: the token fetch did not finish in time"))
    }

    /// Waits on flight `id` for `scope` with a promise of our own, created in our own
    /// request's context; starts the flight first when it is ours (`own`). A flight that
    /// is not ours and does not answer within [`JOIN_TIMEOUT_MS`] is abandoned, which
    /// wakes its waiters (with `undefined`) to re-plan together. The answer is the token
    /// string, a `VccError` object, or `undefined`; `None` if no promise could be made.
    async fn join(self: &Rc<Self>, scope: &ScopeSet, id: FlightId, own: bool, ctx: &JsValue) -> Option<JsValue> {
        let mut resolve: Option<Function> = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        let _ = self.cache.borrow_mut().wait(scope, id, resolve?);
        let _deadline = if own {
            self.start_flight(scope, id, ctx);
            None
        } else {
            let weak: Weak<IsolateTokens> = Rc::downgrade(self);
            let key = scope.clone();
            Some(Timer::new(JOIN_TIMEOUT_MS, true, move || {
                if let Some(tokens) = weak.upgrade() {
                    let waiters = tokens.cache.borrow_mut().abandon(&key, id);
                    for w in waiters {
                        let _ = w.call1(&JsValue::UNDEFINED, &JsValue::UNDEFINED);
                    }
                }
            }))
        };
        Some(JsFuture::from(promise).await.unwrap_or(JsValue::UNDEFINED))
    }

    /// Refreshes `scope`'s token now if it is due (refresh-ahead or later) and waits for
    /// it: the broker's alarm. A fresh token or a cooldown leave nothing to do, so the
    /// alarm may run twice; a flight already under way is waited on like any caller's.
    pub(super) async fn refresh(self: &Rc<Self>, scope: &ScopeSet, ctx: &JsValue) {
        let (id, own) = match self.cache.borrow_mut().get(scope, now_ms()) {
            Plan::UseAndRefresh(id) | Plan::Fetch(id) => (id, true),
            Plan::Wait(id) => (id, false),
            Plan::Use | Plan::Cooldown(_) => return,
        };
        let _ = self.join(scope, id, own, ctx).await;
    }

    /// Starts flight `id` for `scope`, kept alive by this request's `ctx.waitUntil`.
    /// Its waiters are resolved with the token string, or with a `VccError` object.
    fn start_flight(self: &Rc<Self>, scope: &ScopeSet, id: FlightId, ctx: &JsValue) {
        let tokens = self.clone();
        let scope = scope.clone();
        let promise = future_to_promise(async move {
            let result = request_token(&tokens.config.settings, &scope).await;
            let finished = tokens.cache.borrow_mut().finish(&scope, id, result, now_ms());
            let answer = match &finished.outcome {
                Ok(token) => JsValue::from_str(token.expose()),
                Err(e) => to_js_error(e),
            };
            for waiter in finished.waiters {
                let _ = waiter.call1(&JsValue::UNDEFINED, &answer);
            }
            Ok(JsValue::UNDEFINED)
        });
        wait_until(ctx, &promise);
    }
}

impl TokenSource for Rc<IsolateTokens> {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, ctx: &JsValue) -> Result<Lease, VccError> {
        self.lease(scope, ctx).await
    }

    fn reject(&self, scope: &ScopeSet, token: &AccessToken) {
        self.cache.borrow_mut().invalidate_if(scope, token, now_ms());
    }

    fn confirm(&self, scope: &ScopeSet, token: &AccessToken, _ctx: &JsValue) {
        self.cache.borrow_mut().confirm(scope, token);
    }

    fn health(&self) -> Vec<(ScopeSet, Info)> {
        let cache = self.cache.borrow();
        cache.keys().filter_map(|k| Some((k.clone(), cache.info(k)?))).collect()
    }
}
