//! People who sign in, from the isolate's side: the issuer's keys (JWKS), fetched with
//! the same hostility as any upstream (no redirect, a deadline, a size cap), cached and
//! refetched as the core's `JwksClock` says; and each assertion checked: split, header
//! and claims judged by the core (`core::gateway::identity`), the signature verified by
//! WebCrypto (`host.js`).
//!
//! One JWKS fetch at a time per isolate: requests that need one while it runs wait on a
//! promise of their own (workerd: never on another request's), given up after the
//! fetch's own deadline.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use js_sys::{Array, Function, Promise};
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::core::gateway::identity::{
    judge_header, jwk_fits, split, Alg, Identities, JwksClock, Member, Person, JWKS_BODY_CAP, JWKS_TIMEOUT_MS,
};
use crate::core::gateway::Refusal;
use crate::glue::http::{await_upstream, deadline, parse_object, read_capped};
use crate::glue::js::{console_error, now_ms, prop, Timer};

#[wasm_bindgen(module = "/src/glue/gateway/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = decodeJson)]
    fn decode_json(b64: &str) -> JsValue;
    #[wasm_bindgen(js_name = importJwk)]
    fn import_jwk(jwk: &JsValue, alg: &str) -> Promise;
    #[wasm_bindgen(js_name = verifyJws)]
    fn verify_jws(key: &JsValue, alg: &str, signature: &str, signing_input: &str) -> Promise;
    #[wasm_bindgen(js_name = fetchJwks, catch)]
    fn fetch_jwks(url: &str, signal: &AbortSignal) -> Result<Promise, JsValue>;
}

/// A JSON member as the core reads it. A dotted name is a path into nested objects
/// (`custom.groups`: Cloudflare Access puts an identity provider's own claims under
/// `custom`).
fn member(object: &JsValue, name: &str) -> Member {
    let v =
        name.split('.').fold(object.clone(), |o, step| if o.is_object() { prop(&o, step) } else { JsValue::UNDEFINED });
    if let Some(t) = v.as_string() {
        Member::Text(t)
    } else if let Some(n) = v.as_f64() {
        Member::Number(n)
    } else if let Some(b) = v.as_bool() {
        Member::Bool(b)
    } else if Array::is_array(&v) {
        let items: Option<Vec<String>> = v.unchecked_ref::<Array>().iter().map(|i| i.as_string()).collect();
        items.map_or(Member::Other, Member::List)
    } else {
        Member::Other
    }
}

/// Ends a JWKS fetch's single flight when dropped: its waiters are woken.
struct Release<'a>(&'a People);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        for w in self.0.waiting.borrow_mut().take().unwrap_or_default() {
            let _ = w.call0(&JsValue::UNDEFINED);
        }
    }
}

/// The isolate's view of the issuer: its keys by `kid`, and when they were fetched.
pub struct People {
    ids: Arc<Identities>,
    keys: RefCell<LiteMap<String, (Alg, JsValue)>>,
    clock: Cell<JwksClock>,
    /// While a JWKS fetch runs: the `resolve` of each request waiting for it.
    waiting: RefCell<Option<Vec<Function>>>,
    /// Whether the last fetch failed (`/healthz` shows it).
    failing: Cell<bool>,
}

impl People {
    /// An issuer with no keys yet.
    pub fn new(ids: Arc<Identities>) -> Self {
        Self {
            ids,
            keys: RefCell::default(),
            clock: Cell::default(),
            waiting: RefCell::default(),
            failing: Cell::new(false),
        }
    }

    /// The settings.
    pub fn ids(&self) -> &Identities {
        &self.ids
    }

    /// Checks an assertion: who it is, or why not.
    pub async fn verify(&self, jwt: &str) -> Result<Person, Refusal> {
        let parts = split(jwt)?;
        let header = decode_json(&parts.header);
        if header.is_null() {
            return Err(Refusal::BadIdentity);
        }
        let (alg, kid) = judge_header(|n| member(&header, n), &self.ids)?;
        let key = self.key(&kid, alg).await?;
        let valid = JsFuture::from(verify_jws(&key, alg.as_str(), &parts.signature, parts.signing_input)).await;
        if valid.ok().and_then(|v| v.as_bool()) != Some(true) {
            return Err(Refusal::BadIdentity);
        }
        let claims = decode_json(&parts.payload);
        if claims.is_null() {
            return Err(Refusal::BadIdentity);
        }
        self.ids.judge_claims(|n| member(&claims, n), now_ms())
    }

    /// The key for `kid` that verifies `alg`: held, or after a fetch when the clock says
    /// one is due. `identity_unavailable` when no key at all can be had.
    async fn key(&self, kid: &str, alg: Alg) -> Result<JsValue, Refusal> {
        let held = |me: &Self| me.keys.borrow().get(kid).filter(|(a, _)| *a == alg).map(|(_, k)| k.clone());
        let known = held(self).is_some();
        // A fetch under way (a rotation, another request's unknown kid) is waited for
        // only by a request that lacks its key.
        if self.clock.get().should_fetch(known, now_ms()) || (!known && self.waiting.borrow().is_some()) {
            self.refresh().await;
        }
        match held(self) {
            Some(k) => Ok(k),
            None if self.keys.borrow().is_empty() => Err(Refusal::IdentityUnavailable),
            None => Err(Refusal::BadIdentity),
        }
    }

    /// Fetches the JWKS, or waits for the fetch already running.
    async fn refresh(&self) {
        if self.waiting.borrow().is_some() {
            let mut resolve: Option<Function> = None;
            let promise = Promise::new(&mut |res, _| resolve = Some(res));
            let Some(resolve) = resolve else { return };
            if let Some(w) = self.waiting.borrow_mut().as_mut() {
                w.push(resolve.clone());
            }
            // The fetching request may be gone: wait no longer than its deadline.
            let _give_up = Timer::new(u64::from(JWKS_TIMEOUT_MS) + 1_000, true, move || {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            });
            let _ = JsFuture::from(promise).await;
            return;
        }
        *self.waiting.borrow_mut() = Some(Vec::new());
        // However this ends (even dropped with its request), the waiters are released.
        let _release = Release(self);
        let mut clock = self.clock.get();
        clock.tried_at = now_ms();
        self.clock.set(clock);
        match self.fetch().await {
            Ok(keys) => {
                *self.keys.borrow_mut() = keys;
                let mut clock = self.clock.get();
                clock.fetched_at = now_ms();
                self.clock.set(clock);
                self.failing.set(false);
            }
            Err(why) => {
                // Cached keys keep working meanwhile.
                self.failing.set(true);
                let mut line = String::from("{\"error\":\"jwks_unavailable\",\"message\":\"");
                line.push_str(why);
                line.push_str("; cached keys keep working\"}");
                console_error(&line);
            }
        }
    }

    /// One JWKS fetch: every usable key, imported.
    async fn fetch(&self) -> Result<LiteMap<String, (Alg, JsValue)>, &'static str> {
        let signal = deadline(JWKS_TIMEOUT_MS);
        let answer = await_upstream(fetch_jwks(&self.ids.jwks_url, &signal), Some(&signal))
            .await
            .map_err(|_| "the issuer's JWKS could not be fetched (network, timeout or a redirect)")?;
        if answer.status() != 200 {
            return Err("the issuer's JWKS answered other than 200");
        }
        let text = read_capped(&answer, JWKS_BODY_CAP, Some(&signal))
            .await
            .ok()
            .flatten()
            .ok_or("the issuer's JWKS was cut off or over 64 KiB")?;
        let keys = parse_object(&text)
            .map(|o| prop(&o, "keys"))
            .filter(Array::is_array)
            .ok_or("the issuer's JWKS is not a JWK set")?;
        let mut out = LiteMap::new();
        for jwk in keys.unchecked_ref::<Array>().iter() {
            let Some(kid) = prop(&jwk, "kid").as_string().filter(|k| !k.is_empty()) else { continue };
            for alg in self.ids.algorithms.iter().copied() {
                if jwk_fits(|n| member(&jwk, n), alg) {
                    if let Ok(key) = JsFuture::from(import_jwk(&jwk, alg.as_str())).await {
                        out.insert(kid.clone(), (alg, key));
                    }
                }
            }
        }
        Ok(out)
    }

    /// `Retry-After` for `identity_unavailable`: when the next JWKS fetch may be tried.
    pub fn retry_after(&self) -> String {
        let mut s = String::new();
        crate::core::url::push_u64(&mut s, self.clock.get().retry_after_s(now_ms()));
        s
    }

    /// Whether the issuer's keys could not be fetched last time (for `/healthz`).
    pub fn failing(&self) -> bool {
        self.failing.get()
    }
}
