//! `Gateway`: the edge gateway's glue in workerd. Every decision is the core's
//! (`crate::core::gateway` for policy, `crate::core::cache` for tokens); the files here
//! do the I/O, one concern each:
//! - `env.rs`: the settings from the Worker's `env`;
//! - `bindings.rs`: workerd's bindings, typed;
//! - `inbound.rs`: the request's facts and body;
//! - `context.rs`: one request's context, its refusals and its log line;
//! - `forward.rs`: the rate limit, the exchange with VCC, the answer;
//! - `isolate.rs`: the isolate's own token cache (a `TokenSource`);
//! - `broker.rs`: the fleet's broker, from an isolate (a `TokenSource` with a fallback);
//! - `object.rs`: the broker Durable Object's logic (`Broker`);
//! - `messages.rs`: the broker's RPC messages and storage record, to and from JS;
//! - `host.js`: the per-request JS helpers (no policy).

mod bindings;
mod broker;
mod context;
mod env;
mod forward;
mod identity;
mod inbound;
mod isolate;
mod messages;
mod object;

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{Headers, Request, Response, ResponseInit};

pub use self::object::Broker;

use self::bindings::Bindings;
use self::broker::BrokerTokens;
use self::context::{respond, Cx, Served};
use self::forward::{forward, within_rate_limit, Upstream};
use self::identity::People;
use self::inbound::{BodyBudget, Facts, Judged};
use self::isolate::IsolateTokens;
use crate::core::cache::{Info, Rejected};
use crate::core::error::VccError;
use crate::core::gateway::identity::{credential, Credential};
use crate::core::gateway::{
    header_list, health_json_about, misconfigured_json, preflight_headers, split_request_url, whoami_json, Caller,
    Decision, GatewayConfig, HealthAbout, Inbound, Misconfigured, Refusal, Whom, FORWARD_REQUEST_HEADERS,
    FORWARD_RESPONSE_HEADERS, HEALTH_LIVENESS,
};
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::url::push_u64;
use crate::glue::js::{console_error, now_ms, KeepAlive};
use crate::glue::tokens::{Lease, TokenSource};

#[wasm_bindgen(module = "/src/glue/gateway/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = headerSet)]
    fn header_set(list: &str) -> JsValue;
}

/// The edge gateway: `new Gateway(env)` once per isolate, then
/// `gateway.fetch(request, ctx)` per request. Holds data only (tokens and expiry),
/// never a Request, Response or stream across requests.
#[wasm_bindgen]
pub struct Gateway {
    inner: Rc<Inner>,
}

struct Inner {
    /// What a well-configured gateway works with, or the setting that is wrong.
    setup: Result<Setup, Misconfigured>,
    bindings: Bindings,
    /// The core's header allow-lists as host Sets, made once: request, response.
    forward_headers: JsValue,
    pass_headers: JsValue,
    /// The names of the [`Judged`] headers, made once.
    judged: JsValue,
}

struct Setup {
    config: Rc<GatewayConfig>,
    /// The isolate's budget for request bodies (`BODY_BUFFER_LIMIT`).
    bodies: BodyBudget,
    /// The issuer people sign in with, if they do.
    people: Option<People>,
    /// Where requests get their tokens: the seam. The isolate's own cache, or the
    /// fleet's broker (with the isolate's cache as its fallback); the request path is
    /// the same for both.
    tokens: Tokens,
}

/// The two token sources, chosen once per isolate by whether `TOKEN_BROKER` is bound.
enum Tokens {
    Isolate(Rc<IsolateTokens>),
    Broker(Rc<BrokerTokens<Rc<IsolateTokens>>>),
}

impl TokenSource for Tokens {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, caller: &str, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        match self {
            Self::Isolate(t) => t.token(scope, caller, keep_alive).await,
            Self::Broker(t) => t.token(scope, caller, keep_alive).await,
        }
    }

    fn reject(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64) -> Rejected {
        match self {
            Self::Isolate(t) => t.reject(scope, caller, token, sent_at),
            Self::Broker(t) => t.reject(scope, caller, token, sent_at),
        }
    }

    fn confirm(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64, keep_alive: &KeepAlive) {
        match self {
            Self::Isolate(t) => t.confirm(scope, caller, token, sent_at, keep_alive),
            Self::Broker(t) => t.confirm(scope, caller, token, sent_at, keep_alive),
        }
    }

    fn health(&self) -> Vec<(ScopeSet, Info)> {
        match self {
            Self::Isolate(t) => t.health(),
            Self::Broker(t) => t.health(),
        }
    }
}

#[wasm_bindgen]
impl Gateway {
    /// Reads and validates the settings from the Worker's `env`. Never throws: with a
    /// bad setting every request gets 500 `gateway_misconfigured` naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(env: JsValue) -> Gateway {
        let bindings = Bindings::read(&env);
        let setup = env::read_env(&env).map(|config| {
            let config = Rc::new(config);
            let isolate = IsolateTokens::new(config.clone());
            let tokens = match &bindings.broker {
                Some(ns) => Tokens::Broker(Rc::new(BrokerTokens::new(ns.clone(), config.clone(), isolate))),
                None => Tokens::Isolate(isolate),
            };
            let people = config.identities.clone().map(People::new);
            Setup { tokens, bodies: BodyBudget::new(config.body_buffer_limit), people, config }
        });
        if let Err(m) = &setup {
            console_error(&misconfigured_json(m));
        }
        Gateway {
            inner: Rc::new(Inner {
                setup,
                bindings,
                forward_headers: header_set(&header_list(FORWARD_REQUEST_HEADERS)),
                pass_headers: header_set(&header_list(FORWARD_RESPONSE_HEADERS)),
                judged: Judged::names(),
            }),
        }
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

impl Inner {
    async fn handle(self: Rc<Self>, request: Request, ctx: JsValue) -> Result<Response, JsValue> {
        let started = now_ms();
        let facts = Facts::read(&request, &self.judged);
        let mut cx = Cx::new(request, facts, KeepAlive::from_js(ctx));
        let response = self.serve(&mut cx).await?;
        cx.log(response.status(), now_ms() - started);
        Ok(response)
    }

    /// Asks the core what to do with the request, and does it.
    async fn serve(&self, cx: &mut Cx) -> Result<Response, JsValue> {
        let setup = match &self.setup {
            Ok(s) => s,
            Err(m) => {
                cx.detail = Some(Refusal::Misconfigured.code());
                return respond(Refusal::Misconfigured.status(), &misconfigured_json(m), &[]);
            }
        };
        let Some((self_origin, path, query)) = split_request_url(&cx.facts.url) else {
            return cx.refuse(Refusal::PathNotPlain);
        };
        let (self_origin, path, query) = (self_origin.to_owned(), path.to_owned(), query.map(str::to_owned));
        // A sign-in is checked where it decides something: the APIs, /whoami, and
        // /healthz (its details).
        let f = &cx.facts;
        let (authorization, access) = (f.header(Judged::Authorization), f.header(Judged::AccessAssertion));
        let person = match (&setup.people, credential(authorization, access, setup.people.is_some())) {
            (Some(people), Credential::Assertion(jwt))
                if path == "/healthz" || path == "/whoami" || path == "/api" || path.starts_with("/api/") =>
            {
                Some(people.verify(jwt).await)
            }
            _ => None,
        };
        let verdict = {
            let f = &cx.facts;
            setup.config.decide(&Inbound {
                method: &f.method,
                path: &path,
                query: query.as_deref(),
                self_origin: &self_origin,
                origin: f.header(Judged::Origin),
                authorization: f.header(Judged::Authorization),
                content_length: f.header(Judged::ContentLength),
                preflight_method: f.header(Judged::PreflightMethod),
                access: f.header(Judged::AccessAssertion),
                person: person.as_ref().map(|p| p.as_ref().map_err(|r| *r)),
                now_ms: now_ms(),
            })
        };
        match verdict.caller {
            Caller::Key(k) => cx.key = setup.config.key_id(k).map(str::to_owned),
            Caller::Person => {
                if let Some(Ok(p)) = &person {
                    let log_email = setup.people.as_ref().is_some_and(|people| people.ids().log_email);
                    cx.person = Some((p.sub.clone(), p.email.clone().filter(|_| log_email)));
                }
            }
            Caller::None => {}
        }
        match verdict.decision {
            Decision::Refuse(r, origin) => {
                cx.origin = origin;
                match (&setup.people, r) {
                    (Some(people), Refusal::IdentityUnavailable) => {
                        cx.refuse_with(r, vec![("retry-after", people.retry_after())])
                    }
                    _ => cx.refuse(r),
                }
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
            Decision::Health { details } => {
                cx.served = Served::Health;
                let body = if details { self.health(setup) } else { HEALTH_LIVENESS.to_owned() };
                respond(200, &body, &[])
            }
            Decision::WhoAmI => {
                cx.served = Served::WhoAmI;
                let body = match (&verdict.caller, &person) {
                    (Caller::Person, Some(Ok(p))) => {
                        whoami_json(Whom::Person(&p.sub, p.name.as_deref()), &p.scopes, p.admin)
                    }
                    (Caller::Key(k), _) => {
                        let (id, scopes) = setup.config.key_grant(*k).unwrap_or_default();
                        let admin = scopes.iter().any(|s| s == crate::core::gateway::ADMIN_SCOPE);
                        whoami_json(Whom::Key(id), &scopes, admin)
                    }
                    _ => crate::core::gateway::WHOAMI_NOBODY.to_owned(),
                };
                respond(200, &body, &[])
            }
            Decision::Static => match &self.bindings.assets {
                Some(assets) => {
                    cx.served = Served::Assets;
                    Ok(JsFuture::from(assets.serve(&cx.request)?).await?.unchecked_into())
                }
                None => cx.refuse(Refusal::RouteNotFound),
            },
            Decision::Forward(f, origin) => {
                cx.origin = origin;
                cx.served = Served::Api(f.route.clone());
                cx.scope = Some(f.scope.clone());
                if !within_rate_limit(self.bindings.rate_limit.as_ref(), cx.caller_id().as_deref()).await {
                    let mut retry_after = String::new();
                    push_u64(&mut retry_after, u64::from(setup.config.rate_limit_period_s));
                    return cx.refuse_with(Refusal::RateLimited, vec![("retry-after", retry_after)]);
                }
                let up = Upstream {
                    config: &setup.config,
                    tokens: &setup.tokens,
                    forward_headers: &self.forward_headers,
                    pass_headers: &self.pass_headers,
                    bodies: &setup.bodies,
                };
                forward(cx, &up, f).await
            }
        }
    }

    /// The `/healthz` body.
    fn health(&self, setup: &Setup) -> String {
        let mut scopes = setup.tokens.health();
        scopes.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let scopes: Vec<_> = scopes.iter().map(|(k, info)| (k.as_str(), info.clone())).collect();
        let about = HealthAbout {
            tokens: match &setup.tokens {
                Tokens::Isolate(_) => "isolate",
                Tokens::Broker(_) => "broker",
            },
            broker_error: match &setup.tokens {
                Tokens::Broker(b) => b.last_error(),
                Tokens::Isolate(_) => None,
            },
            rate_limit: self.bindings.rate_limit.is_some(),
            identity: match &setup.people {
                None => "off",
                Some(p) if p.failing() => "jwks_unavailable",
                Some(_) => "on",
            },
            keys: setup.config.key_list().collect(),
        };
        health_json_about(now_ms(), &scopes, &about)
    }
}
