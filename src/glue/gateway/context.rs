//! One request on its way through the gateway ([`Cx`]): what it is, what its refusals
//! look like, and the one log line it ends with.

use std::borrow::Cow;

use wasm_bindgen::prelude::*;
use web_sys::{Headers, Request, Response, ResponseInit};

use super::inbound::Facts;
use crate::core::gateway::{cors_headers, log_json, LogLine, OriginCheck, Refusal};
use crate::core::scope::ScopeSet;
use crate::glue::js::{console_log, KeepAlive};
use crate::glue::tokens::{CacheUse, Via};

/// A JSON answer of the gateway's own.
pub fn respond(status: u16, body: &str, extra: &[(&'static str, String)]) -> Result<Response, JsValue> {
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

/// The CORS headers an answer to `origin` carries (none unless it is allowed).
pub fn cors_for(origin: &OriginCheck) -> Vec<(&'static str, String)> {
    match origin {
        OriginCheck::Allowed(o) => cors_headers(o).to_vec(),
        _ => Vec::new(),
    }
}

/// What the log line says a request was for.
pub enum Served {
    /// Refused before it was routed.
    Nothing,
    /// `/healthz`.
    Health,
    /// `/whoami`.
    WhoAmI,
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
            Self::WhoAmI => "/whoami",
            Self::Assets => "assets",
            Self::Api(prefix) => prefix,
        }
    }
}

/// The log's word for how a request's token was had.
fn cache_word(c: CacheUse) -> &'static str {
    match c {
        CacheUse::Hit => "hit",
        CacheUse::Miss => "miss",
        CacheUse::Refreshed => "refreshed",
    }
}

/// The log's word for where a request's token came from.
fn via_word(v: Via) -> &'static str {
    match v {
        Via::Local => "isolate",
        Via::L1 => "l1",
        Via::Broker => "broker",
        Via::BrokerWait => "broker_wait",
        Via::Fallback => "fallback",
    }
}

/// One request on its way through the gateway: what it is, and what its one log line
/// will say. Every step reads and notes through it, so nothing is threaded as an
/// out-parameter.
pub struct Cx {
    pub request: Request,
    /// Method, URL and the judged headers, read once.
    pub facts: Facts,
    /// What keeps work this request starts running after it ends (`ctx.waitUntil`).
    pub keep_alive: KeepAlive,
    pub origin: OriginCheck,
    pub served: Served,
    /// The id of the key that asked, once known (never the key or its digest).
    pub key: Option<String>,
    /// The signed-in person's `sub`, once known, and email (only with
    /// `ACCESS_LOG_EMAIL`).
    pub person: Option<(String, Option<String>)>,
    pub scope: Option<ScopeSet>,
    pub cache: Option<CacheUse>,
    /// Where the token came from.
    pub via: Option<Via>,
    /// A code: the refusal's, or the more precise one of what caused it.
    pub detail: Option<&'static str>,
}

impl Cx {
    /// A request about to be served, with its facts read.
    pub fn new(request: Request, facts: Facts, keep_alive: KeepAlive) -> Self {
        Cx {
            request,
            facts,
            keep_alive,
            origin: OriginCheck::None,
            served: Served::Nothing,
            key: None,
            person: None,
            scope: None,
            cache: None,
            via: None,
            detail: None,
        }
    }

    /// Answers with refusal `r` (CORS headers when the origin is allowed), noting its
    /// code unless a more precise one is already noted.
    pub fn refuse(&mut self, r: Refusal) -> Result<Response, JsValue> {
        self.refuse_with(r, Vec::new())
    }

    /// [`Self::refuse`] with headers of its own (`Retry-After`).
    pub fn refuse_with(&mut self, r: Refusal, mut extra: Vec<(&'static str, String)>) -> Result<Response, JsValue> {
        self.detail.get_or_insert(r.code());
        extra.extend(cors_for(&self.origin));
        respond(r.status(), &r.json(), &extra)
    }

    /// Who asked, as the rate limit and the storm brake count callers: the key's id, or
    /// `person:` and the `sub` (no key id holds a `:`).
    pub fn caller_id(&self) -> Option<String> {
        match (&self.key, &self.person) {
            (Some(k), _) => Some(k.clone()),
            (None, Some((sub, _))) => Some(["person:", sub].concat()),
            _ => None,
        }
    }

    /// The request's JSON log line: no token, key, secret, path or query.
    pub fn log(&self, status: u16, ms: u64) {
        console_log(&log_json(&LogLine {
            method: &self.facts.method,
            route: self.served.as_str(),
            status,
            ms,
            key: self.key.as_deref(),
            person: self.person.as_ref().map(|(sub, _)| sub.as_str()),
            email: self.person.as_ref().and_then(|(_, e)| e.as_deref()),
            scope: self.scope.as_ref().map(ScopeSet::as_str),
            cache: self.cache.map_or("-", cache_word),
            tokens: self.via.map_or("-", via_word),
            detail: self.detail,
        }));
    }
}
