//! The client's side of a token store shared by a fleet (`store` option; the policy is
//! `core::store`'s). A flight of the client's cache (`tokens.rs`) comes here instead of
//! going straight to VCC: it reads the scope set's record, reports the generations this
//! process saw rejected, and uses the token there, or takes the lock and fetches one for
//! everyone, or waits for whoever holds the lock.
//!
//! The store sees only sealed records (AES-GCM, `store.js`) under names it cannot read
//! (HMAC): both keys are derived from the client secret (HKDF), which never leaves this
//! process. A record that does not open (another secret, damage) is no record.
//!
//! Never worse than no store: a store that fails, stalls (each operation has a
//! deadline) or answers garbage opens a circuit breaker, and the process fetches its own
//! tokens meanwhile; callers see no failure.

use std::cell::{Cell, RefCell};

use js_sys::{Array, Promise};
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use super::tokens::CacheKey;
use crate::core::cache::cooldown_error;
use crate::core::config::Settings;
use crate::core::error::VccError;
use crate::core::secret::{AccessToken, ClientSecret};
use crate::core::store::{
    confirmed, lock_lease_ms, op_timeout_ms, poll_delay_ms, read, record_ttl_ms, rejected, written, Breaker, Read,
    Rejection, StoreRecord,
};
use crate::core::token::{Margins, Token};
use crate::glue::http::request_token;
use crate::glue::js::{now_ms, sleep, Timer};

#[wasm_bindgen]
extern "C" {
    /// The user's store (`VccTokenStore`: `vcc-auth/redis`, or their own).
    pub type TokenStore;
    #[wasm_bindgen(method, catch)]
    fn get(this: &TokenStore, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn swap(
        this: &TokenStore,
        key: &str,
        expected: Option<String>,
        value: &str,
        ttl_ms: f64,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn lock(this: &TokenStore, key: &str, owner: &str, lease_ms: f64) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn unlock(this: &TokenStore, key: &str, owner: &str) -> Result<Promise, JsValue>;
}

#[wasm_bindgen(module = "/src/glue/client/store.js")]
extern "C" {
    #[wasm_bindgen(js_name = storeKeys)]
    fn store_keys(secret: &str) -> Promise;
    #[wasm_bindgen(js_name = storeName)]
    fn store_name(keys: &JsValue, parts: &str) -> Promise;
    fn seal(keys: &JsValue, name: &str, text: &str) -> Promise;
    fn open(keys: &JsValue, name: &str, sealed: &str) -> Promise;
    #[wasm_bindgen(js_name = lockOwner)]
    fn lock_owner() -> String;
}

/// What this process knows of the store's token for a key.
struct Meta {
    token: AccessToken,
    /// Its generation (0: not in the store; a rejection of it is this process's alone).
    generation: u64,
    /// The store had it: this process made no token request for it.
    cached: bool,
    /// It replaced a rejected token and no process had seen it work.
    probation: bool,
}

/// Why a flight did not end with a token.
enum Miss {
    /// VCC's answer (or the fleet's cooldown): the flight's outcome.
    Vcc(VccError),
    /// The store failed: open the breaker, fetch our own.
    Store(&'static str),
    /// The lock stayed held past its lease (a store that does not expire it): fetch our
    /// own, without blaming the store.
    Waited,
}

/// The store as the client uses it.
pub struct Store {
    js: TokenStore,
    /// `{ seal, name }`: the CryptoKeys derived from the secret (a promise made once).
    keys: Promise,
    names: RefCell<LiteMap<CacheKey, String>>,
    meta: RefCell<LiteMap<CacheKey, Meta>>,
    /// Generations this process saw rejected, for the next flight of each key.
    rejected: RefCell<LiteMap<CacheKey, Vec<u64>>>,
    breaker: Cell<Breaker>,
    /// Why the store last failed, until the client reports it.
    failure: Cell<Option<&'static str>>,
    margins: Margins,
    timeout_ms: u32,
}

impl Store {
    /// The store `js`, sealing with keys derived from `secret`.
    pub fn new(js: TokenStore, secret: &ClientSecret, settings: &Settings) -> Store {
        Store {
            js,
            keys: store_keys(secret.expose()),
            names: RefCell::default(),
            meta: RefCell::default(),
            rejected: RefCell::default(),
            breaker: Cell::default(),
            failure: Cell::new(None),
            margins: settings.margins,
            timeout_ms: settings.timeout_ms,
        }
    }

    /// Why the store failed since the last call, if it did (the client's `onEvent`).
    pub fn take_failure(&self) -> Option<&'static str> {
        self.failure.take()
    }

    /// A flight: a token for `key` through the store, or the process's own while the
    /// store fails.
    pub async fn fetch(&self, key: &CacheKey, settings: &Settings) -> Result<Token, VccError> {
        if !self.breaker.get().allows(now_ms()) {
            return self.own(key, settings).await;
        }
        match self.flight(key, settings).await {
            Ok(token) => {
                let mut b = self.breaker.get();
                b.succeeded();
                self.breaker.set(b);
                Ok(token)
            }
            Err(Miss::Vcc(e)) => Err(e),
            Err(Miss::Store(why)) => {
                let mut b = self.breaker.get();
                b.failed(now_ms());
                self.breaker.set(b);
                self.failure.set(Some(why));
                self.own(key, settings).await
            }
            Err(Miss::Waited) => self.own(key, settings).await,
        }
    }

    /// This process's own token request, outside the store.
    async fn own(&self, key: &CacheKey, settings: &Settings) -> Result<Token, VccError> {
        let token = request_token(settings, key.scopes()).await?;
        self.remember(key, &token, 0, false, false);
        Ok(token)
    }

    fn remember(&self, key: &CacheKey, token: &Token, generation: u64, cached: bool, probation: bool) {
        let meta = Meta { token: token.value.clone(), generation, cached, probation };
        self.meta.borrow_mut().insert(key.clone(), meta);
    }

    /// Whether `token` came from the store without a token request of ours.
    pub fn cached(&self, key: &CacheKey, token: &AccessToken) -> bool {
        self.meta.borrow().get(key).is_some_and(|m| m.cached && &m.token == token)
    }

    /// Whether `token` is the store's and off probation: a rejection of it is a
    /// revocation, not a storm (the client's cache vouches for it).
    pub fn vouches(&self, key: &CacheKey, token: &AccessToken) -> bool {
        self.meta.borrow().get(key).is_some_and(|m| m.generation > 0 && !m.probation && &m.token == token)
    }

    /// VCC rejected `token`, and the client's cache dropped it: its generation is
    /// dropped from the store by this key's next flight (which follows at once: the
    /// call is retried).
    pub fn reject(&self, key: &CacheKey, token: &AccessToken) {
        let generation = self.meta.borrow().get(key).filter(|m| &m.token == token).map(|m| m.generation);
        if let Some(g) = generation.filter(|g| *g > 0) {
            let mut pending = self.rejected.borrow_mut();
            let list = pending.entry(key.clone()).or_default();
            if !list.contains(&g) && list.len() < 8 {
                list.push(g);
            }
        }
    }

    /// `invalidate()`: the store's token for `key` is dropped for the whole fleet now, if
    /// it is the one this process holds.
    pub async fn drop_current(&self, key: &CacheKey) {
        let generation = self.meta.borrow_mut().remove(key).map(|m| m.generation).filter(|g| *g > 0);
        if let Some(g) = generation {
            self.rejected.borrow_mut().entry(key.clone()).or_default().push(g);
            if self.breaker.get().allows(now_ms()) {
                if let Ok((keys, name)) = self.names_for(key).await {
                    let _ = self.report(key, &keys, &name).await;
                }
            }
        }
    }

    /// VCC accepted `token`: if it is on probation, the store hears it works (once).
    pub fn confirm(self: &std::rc::Rc<Self>, key: &CacheKey, token: &AccessToken) {
        let generation = {
            let mut meta = self.meta.borrow_mut();
            let Some(m) = meta.get_mut(key).filter(|m| m.probation && &m.token == token) else { return };
            m.probation = false;
            m.generation
        };
        if generation == 0 || !self.breaker.get().allows(now_ms()) {
            return;
        }
        let (me, key) = (self.clone(), key.clone());
        spawn_local(async move {
            let Ok((keys, name)) = me.names_for(&key).await else { return };
            let Ok((raw, Some(record))) = me.load(&keys, &name).await else { return };
            if let Some(r) = confirmed(&record, generation) {
                // One try: a conflict means another process wrote, and its record counts.
                let _ = me.write(&keys, &name, raw, &r).await;
            }
        });
    }

    /// The derived keys and `key`'s record name.
    async fn names_for(&self, key: &CacheKey) -> Result<(JsValue, String), Miss> {
        let keys = JsFuture::from(self.keys.clone()).await.map_err(|_| Miss::Store("no WebCrypto HKDF here"))?;
        if let Some(n) = self.names.borrow().get(key) {
            return Ok((keys, n.clone()));
        }
        let mut parts = String::from("vcc-auth token\0");
        for p in [key.auth_base(), key.client_id(), key.scopes().as_str()] {
            parts.push_str(p);
            parts.push('\0');
        }
        let name = JsFuture::from(store_name(&keys, &parts))
            .await
            .ok()
            .and_then(|n| n.as_string())
            .ok_or(Miss::Store("could not name the record"))?;
        self.names.borrow_mut().insert(key.clone(), name.clone());
        Ok((keys, name))
    }

    /// One store operation within its deadline.
    async fn op(&self, call: Result<Promise, JsValue>) -> Result<JsValue, Miss> {
        let answer = call.map_err(|_| Miss::Store("the store threw"))?;
        let mut resolve: Option<js_sys::Function> = None;
        let timeout = Promise::new(&mut |res, _| resolve = Some(res));
        let _timer = resolve.map(|r| {
            Timer::new(op_timeout_ms(self.timeout_ms), true, move || {
                let _ = r.call1(&JsValue::UNDEFINED, &TIMED_OUT.with(JsValue::clone));
            })
        });
        let raced = Promise::race(&Array::of2(&Promise::resolve(&answer), &timeout));
        match JsFuture::from(raced).await {
            Ok(v) if TIMED_OUT.with(|t| js_sys::Object::is(&v, t)) => {
                Err(Miss::Store("the store did not answer in time"))
            }
            Ok(v) => Ok(v),
            Err(_) => Err(Miss::Store("the store failed")),
        }
    }

    /// The record under `name`: its raw text (for compare-and-set) and what it says
    /// (`None` if it does not open: another secret's, or damaged).
    async fn load(&self, keys: &JsValue, name: &str) -> Result<(Option<String>, Option<StoreRecord>), Miss> {
        let v = self.op(self.js.get(name)).await?;
        if v.is_null() || v.is_undefined() {
            return Ok((None, None));
        }
        let raw = v.as_string().ok_or(Miss::Store("the store's get answered something other than a string or null"))?;
        let opened = JsFuture::from(open(keys, name, &raw)).await.ok().and_then(|t| t.as_string());
        let record = opened.as_deref().and_then(StoreRecord::decode);
        // The plaintext held the token: it is not kept.
        drop(zeroize::Zeroizing::new(opened));
        Ok((Some(raw), record))
    }

    /// Seals `record` and writes it under `name` if the store still holds `expected`.
    /// Returns the sealed text when it was written.
    async fn write(
        &self,
        keys: &JsValue,
        name: &str,
        expected: Option<String>,
        record: &StoreRecord,
    ) -> Result<Option<String>, Miss> {
        let sealed = JsFuture::from(seal(keys, name, &record.encode()))
            .await
            .ok()
            .and_then(|s| s.as_string())
            .ok_or(Miss::Store("could not seal the record"))?;
        let ttl = record_ttl_ms(record, now_ms()) as f64;
        let stored = self.op(self.js.swap(name, expected, &sealed, ttl)).await?;
        Ok(stored.as_bool().unwrap_or(false).then_some(sealed))
    }

    /// Drops the generations this process saw rejected, if the store still holds them.
    /// On a store failure they are kept for the next flight.
    async fn report(&self, key: &CacheKey, keys: &JsValue, name: &str) -> Result<(), Miss> {
        let pending = self.rejected.borrow_mut().remove(key).unwrap_or_default();
        for (i, generation) in pending.iter().enumerate() {
            // A few tries: a conflict is another process writing, and we read again.
            for _ in 0..3 {
                let (raw, record) = match self.load(keys, name).await {
                    Ok(r) => r,
                    Err(e) => {
                        self.rejected.borrow_mut().entry(key.clone()).or_default().extend(&pending[i..]);
                        return Err(e);
                    }
                };
                let Some(record) = record else { break };
                let (Rejection::Dropped(r) | Rejection::Storm(r)) = rejected(&record, *generation, now_ms()) else {
                    break;
                };
                if self.write(keys, name, raw, &r).await?.is_some() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The flight through the store.
    async fn flight(&self, key: &CacheKey, settings: &Settings) -> Result<Token, Miss> {
        let (keys, name) = self.names_for(key).await?;
        self.report(key, &keys, &name).await?;
        let lock = [name.as_str(), ":lock"].concat();
        let lease = lock_lease_ms(settings.timeout_ms);
        let give_up_at = now_ms().saturating_add(lease).saturating_add(1_000);
        let mut attempt = 0;
        loop {
            let (raw, record) = self.load(&keys, &name).await?;
            let now = now_ms();
            let plan = read(record.as_ref(), self.margins, now);
            let (generation, probation) = record.as_ref().map_or((0, false), |r| (r.generation, r.probation));
            match plan {
                Read::Use(t) => {
                    self.remember(key, &t, generation, true, probation);
                    return Ok(t);
                }
                Read::Cooldown(until) => return Err(Miss::Vcc(cooldown_error(until, now))),
                Read::Refresh(_) | Read::Fetch => {}
            }
            let owner = lock_owner();
            let took = self.op(self.js.lock(&lock, &owner, lease as f64)).await?.as_bool() == Some(true);
            if took {
                let result = self.fetch_locked(key, settings, &keys, &name, raw).await;
                // A failed unlock is not the caller's problem: the lease frees it.
                let _ = self.op(self.js.unlock(&lock, &owner)).await;
                return result;
            }
            // Another process refreshes: the current token serves meanwhile.
            if let Read::Refresh(t) = plan {
                self.remember(key, &t, generation, true, probation);
                return Ok(t);
            }
            if now_ms() >= give_up_at {
                return Err(Miss::Waited);
            }
            sleep(poll_delay_ms(attempt)).await;
            attempt += 1;
        }
    }

    /// With the lock: read once more (another process may have written since), then
    /// fetch from VCC and write the token for everyone.
    async fn fetch_locked(
        &self,
        key: &CacheKey,
        settings: &Settings,
        keys: &JsValue,
        name: &str,
        raw_before: Option<String>,
    ) -> Result<Token, Miss> {
        let (raw, record) = self.load(keys, name).await?;
        if raw != raw_before {
            if let Read::Use(t) = read(record.as_ref(), self.margins, now_ms()) {
                let r = record.as_ref();
                self.remember(key, &t, r.map_or(0, |r| r.generation), true, r.is_some_and(|r| r.probation));
                return Ok(t);
            }
        }
        let token = request_token(settings, key.scopes()).await.map_err(Miss::Vcc)?;
        let new = written(record.as_ref(), token.clone(), now_ms());
        // Not written (someone else did, their lease having outlived ours): this token
        // is good all the same, and only this process uses it.
        let stored = self.write(keys, name, raw, &new).await.ok().flatten().is_some();
        self.remember(key, &token, if stored { new.generation } else { 0 }, false, stored && new.probation);
        Ok(token)
    }
}

thread_local! {
    /// What the store operation's timer resolves with: no store answers this object.
    static TIMED_OUT: JsValue = js_sys::Object::new().into();
}
