//! One wasm-bindgen-test suite, run in Node (`tests/node.rs`) and headless Chromium
//! (`tests/browser.rs`) against the VCC emulator the test command starts
//! (`VCC_EMULATOR_URL`, baked in at compile time). Every test registers its own
//! emulator client, so faults and counters never leak between tests.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, JSON};
use vcc_auth::VccClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{Request, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: i32) -> JsValue;
}

fn emulator() -> &'static str {
    match option_env!("VCC_EMULATOR_URL") {
        Some(url) => url,
        None => panic!("build the wasm tests with VCC_EMULATOR_URL set (make test does)"),
    }
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(v.clone(), |acc, k| Reflect::get(&acc, &k.into()).unwrap_or(JsValue::UNDEFINED))
}

fn num(v: &JsValue, path: &str) -> f64 {
    get(v, path).as_f64().unwrap_or(0.0)
}

async fn http(method: &str, url: &str, body: Option<&JsValue>) -> (u16, JsValue) {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JSON::stringify(b).unwrap().into());
        let h = web_sys::Headers::new().unwrap();
        h.set("content-type", "application/json").unwrap();
        init.set_headers(&h);
    }
    let req = Request::new_with_str_and_init(url, &init).unwrap();
    let resp: Response = JsFuture::from(global_fetch(&req)).await.unwrap().unchecked_into();
    let text = JsFuture::from(resp.text().unwrap()).await.unwrap().as_string().unwrap();
    (resp.status(), JSON::parse(&text).unwrap_or(JsValue::from_str(&text)))
}

async fn control(path: &str, body: JsValue) -> JsValue {
    let (status, v) = http("POST", &format!("{}{path}", emulator()), Some(&body)).await;
    assert_eq!(status, 200, "emulator control {path}");
    v
}

async fn stats(client_id: &str) -> JsValue {
    http("GET", &format!("{}/_emulator/stats?clientId={client_id}", emulator()), None).await.1
}

async fn seen(client_id: &str) -> JsValue {
    get(&http("GET", &format!("{}/_emulator/requests?clientId={client_id}", emulator()), None).await.1, "requests")
}

const SECRET_PREFIX: &str = "s3cret-never-shown-";

/// A fresh emulator client with its own id, secret and token lifetime.
async fn new_client_id(lifetime_s: u32, scopes: &[&str]) -> (String, String) {
    let id = format!("t-{}", (js_sys::Math::random() * 1e12) as u64);
    let secret = format!("{SECRET_PREFIX}{id}");
    let scopes = scopes.iter().map(|s| JsValue::from_str(s)).collect::<js_sys::Array>();
    control(
        "/_emulator/clients",
        obj(&[
            ("id", id.as_str().into()),
            ("secret", secret.as_str().into()),
            ("scopes", scopes.into()),
            ("lifetimeSeconds", lifetime_s.into()),
        ]),
    )
    .await;
    (id, secret)
}

async fn faults(client_id: &str, pairs: &[(&str, JsValue)]) {
    let mut all = vec![("clientId", JsValue::from_str(client_id))];
    all.extend(pairs.iter().cloned());
    control("/_emulator/faults", obj(&all)).await;
}

fn options(id: &str, secret: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let mut all = vec![
        ("clientId", JsValue::from_str(id)),
        ("clientSecret", JsValue::from_str(secret)),
        ("authBaseUrl", JsValue::from_str(emulator())),
        ("apiBaseUrl", JsValue::from_str(emulator())),
    ];
    all.extend(extra.iter().cloned());
    obj(&all)
}

fn client(id: &str, secret: &str, extra: &[(&str, JsValue)]) -> VccClient {
    VccClient::new(options(id, secret, extra)).map_err(|e| get(&e, "message")).unwrap()
}

async fn token(c: &VccClient, scope: &str) -> Result<String, JsValue> {
    JsFuture::from(c.get_token(scope)).await.map(|v| v.as_string().unwrap())
}

async fn api(c: &VccClient, path: &str, init: JsValue) -> Result<Response, JsValue> {
    JsFuture::from(c.fetch(path.into(), Some(init))).await.map(|r| r.unchecked_into())
}

async fn json_of(r: Response) -> JsValue {
    JsFuture::from(r.json().unwrap()).await.unwrap()
}

/// The secret and the token must never appear in an error's message, code or string.
fn assert_clean(e: &JsValue, secret: &str) {
    let shown = format!(
        "{:?} {:?} {:?}",
        get(e, "message").as_string(),
        js_sys::Error::from(e.clone()).to_string().as_string(),
        JSON::stringify(e).ok().and_then(|s| s.as_string())
    );
    assert!(!shown.contains(secret), "secret leaked: {shown}");
    assert!(!shown.contains("eyJ"), "token leaked: {shown}");
}

fn event_log() -> (Rc<RefCell<Vec<JsValue>>>, JsValue) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| l.borrow_mut().push(e));
    let func = f.as_ref().clone();
    f.forget();
    (log, func)
}

fn types(log: &Rc<RefCell<Vec<JsValue>>>) -> Vec<String> {
    log.borrow().iter().map(|e| get(e, "type").as_string().unwrap_or_default()).collect()
}

#[wasm_bindgen_test]
async fn concurrent_get_token_makes_one_token_request() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    let calls: Vec<_> = (0..50).map(|_| JsFuture::from(c.get_token("agents-availability:read"))).collect();
    let results = futures::future::join_all(calls).await;
    let first = results[0].as_ref().unwrap().as_string().unwrap();
    assert!(first.starts_with("eyJ"));
    assert!(results.iter().all(|r| r.as_ref().unwrap().as_string().unwrap() == first));
    // scope sets normalise to the same cache entry
    assert_eq!(token(&c, "  agents-availability:read ").await.unwrap(), first);
    assert_eq!(num(&stats(&id).await, "tokenRequests.agents-availability:read"), 1.0);
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 1.0);
    c.close();
}

#[wasm_bindgen_test]
async fn expired_token_401_gets_one_refresh_and_one_retry() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    let r = api(&c, "/agents-availability?skillNames=Sales", JsValue::UNDEFINED).await.unwrap();
    assert_eq!(r.status(), 200);
    let before = token(&c, "agents-availability:read").await.unwrap();
    control("/_emulator/revoke", obj(&[("clientId", id.as_str().into())])).await;
    let r = api(&c, "/agents-availability?skillNames=Sales", JsValue::UNDEFINED).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(num(&json_of(r).await, "Ready"), 10.0);
    let s = stats(&id).await;
    assert_eq!(num(&s, "tokenRequests.agents-availability:read"), 2.0, "one refresh");
    assert_eq!(num(&s, "api401InvalidToken"), 1.0);
    assert_eq!(num(&s, "apiRequests"), 3.0, "one retry");
    // the rejected token is gone from every cache path, including getToken's fast path
    assert_ne!(token(&c, "agents-availability:read").await.unwrap(), before);
    assert_eq!(num(&stats(&id).await, "tokenRequests.agents-availability:read"), 2.0);
    c.close();
}

#[wasm_bindgen_test]
async fn unauthorized_scope_401_is_returned_without_a_loop() {
    let (id, secret) = new_client_id(3600, &["agents-availability:read"]).await;
    let c = client(&id, &secret, &[]);
    let init = obj(&[("scope", "agents-availability:read".into())]);
    let r = api(&c, "/stats/agent-status", init).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(get(&json_of(r).await, "message").as_string().as_deref(), Some("Unauthorized"));
    let s = stats(&id).await;
    assert_eq!(num(&s, "tokenAttempts"), 1.0, "no new token");
    assert_eq!(num(&s, "apiRequests"), 1.0, "no retry");
    c.close();
}

#[wasm_bindgen_test]
async fn two_503s_then_success() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("token503", 2.into())]).await;
    let c = client(&id, &secret, &[]);
    assert!(token(&c, "stats").await.unwrap().starts_with("eyJ"));
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 3.0);
    c.close();
}

#[wasm_bindgen_test]
async fn retries_stop_after_max_and_surface_token_endpoint() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("token5xx", 10.into())]).await;
    let c = client(&id, &secret, &[("maxRetries", 1.into())]);
    let e = token(&c, "stats").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("token_endpoint"));
    assert_eq!(num(&e, "status"), 500.0);
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 2.0);
    assert_clean(&e, &secret);
    c.close();
}

#[wasm_bindgen_test]
async fn rate_limit_with_retry_after_is_honoured() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("token429", 1.into()), ("retryAfter", 1.into())]).await;
    let c = client(&id, &secret, &[]);
    let start = js_sys::Date::now();
    assert!(token(&c, "stats").await.is_ok());
    assert!(js_sys::Date::now() - start >= 950.0, "waited for Retry-After");
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 2.0);
    c.close();
}

#[wasm_bindgen_test]
async fn garbage_is_bad_response_and_not_retried() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("tokenMalformed", 1.into())]).await;
    let c = client(&id, &secret, &[]);
    let e = token(&c, "stats").await.unwrap_err();
    assert_eq!(get(&e, "name").as_string().as_deref(), Some("VccError"));
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("bad_response"));
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 1.0);
    c.close();
}

#[wasm_bindgen_test]
async fn wrong_secret_is_invalid_client_and_never_shown() {
    let (id, _) = new_client_id(3600, &["*"]).await;
    let wrong = format!("{SECRET_PREFIX}wrong-{id}");
    let c = client(&id, &wrong, &[]);
    let e = token(&c, "stats").await.unwrap_err();
    assert!(e.is_instance_of::<js_sys::Error>());
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_client"));
    assert_clean(&e, &wrong);
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 1.0, "4xx is not retried");
    c.close();
}

#[wasm_bindgen_test]
async fn scope_not_granted_is_invalid_scope() {
    let (id, secret) = new_client_id(3600, &["stats"]).await;
    let c = client(&id, &secret, &[]);
    let e = token(&c, "users:write").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_scope"));
    assert!(get(&e, "message").as_string().unwrap().contains("users:write"));
    let e = token(&c, "Not A Scope").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_config"));
    c.close();
}

#[wasm_bindgen_test]
async fn basic_client_auth_works() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[("clientAuth", "basic".into())]);
    assert!(token(&c, "users:read").await.unwrap().starts_with("eyJ"));
    c.close();
}

#[wasm_bindgen_test]
async fn timeout_is_reported_as_timeout() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("tokenDelayMs", 2000.into())]).await;
    let c = client(&id, &secret, &[("timeoutMs", 200.into()), ("maxRetries", 0.into())]);
    let e = token(&c, "stats").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("timeout"));
    c.close();
}

#[wasm_bindgen_test]
async fn timer_refreshes_short_lived_tokens_without_calls() {
    let (id, secret) = new_client_id(3, &["*"]).await;
    let (log, on_event) = event_log();
    let c = client(&id, &secret, &[("onEvent", on_event)]);
    let first = token(&c, "stats").await.unwrap();
    sleep(4_500).await;
    let kinds = types(&log);
    assert_eq!(kinds.first().map(String::as_str), Some("fetched"));
    assert!(kinds.iter().filter(|k| *k == "refreshed").count() >= 2, "timer refreshes: {kinds:?}");
    let info = c.token_info("stats").unwrap();
    assert!(num(&info, "refreshes") >= 2.0);
    assert_ne!(token(&c, "stats").await.unwrap(), first);
    // a handful of refreshes, not one per call
    assert!(num(&stats(&id).await, "tokenRequests.stats") <= 6.0);
    c.close();
}

#[wasm_bindgen_test]
async fn failing_refresh_keeps_serving_the_valid_token() {
    let (id, secret) = new_client_id(4, &["*"]).await;
    let (log, on_event) = event_log();
    let c = client(&id, &secret, &[("onEvent", on_event), ("autoRefresh", false.into()), ("maxRetries", 0.into())]);
    let first = token(&c, "stats").await.unwrap();
    faults(&id, &[("tokenDown", true.into())]).await;
    sleep(2_300).await; // inside the refresh-ahead window, before the hard margin
    assert_eq!(token(&c, "stats").await.unwrap(), first, "cached token served while refreshing");
    sleep(300).await;
    assert_eq!(token(&c, "stats").await.unwrap(), first, "still served after the refresh failed");
    let failed =
        log.borrow().iter().find(|e| get(e, "type").as_string().as_deref() == Some("failed")).cloned().unwrap();
    assert_eq!(get(&failed, "keptToken").as_bool(), Some(true));
    assert_eq!(get(&c.token_info("stats").unwrap(), "lastError.code").as_string().as_deref(), Some("token_endpoint"));
    sleep(2_000).await; // now expired: the error surfaces
    let e = token(&c, "stats").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("token_endpoint"));
    faults(&id, &[]).await;
    assert!(token(&c, "stats").await.is_ok(), "recovers once the endpoint is back");
    c.close();
}

#[wasm_bindgen_test]
async fn fetch_adds_bearer_and_versioned_accept_and_respects_the_callers() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    let r = api(&c, "/useradmin/users?page=2&limit=5", JsValue::UNDEFINED).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(num(&body, "page"), 2.0);
    let last = seen(&id).await;
    let last = Reflect::get(&last, &0.into()).unwrap();
    assert_eq!(get(&last, "headers.authorization").as_string().as_deref(), Some("Bearer <valid token>"));
    assert_eq!(get(&last, "headers.accept").as_string().as_deref(), Some("application/vnd.newvoicemedia.v1+json"));
    assert_eq!(get(&last, "query").as_string().as_deref(), Some("page=2&limit=5"));
    // a caller's Accept is kept (here an invalid one, so VCC's 400 proves it was sent)
    let headers = obj(&[("accept", "application/json".into())]);
    let r = api(&c, "/stats/agent-status", obj(&[("headers", headers)])).await.unwrap();
    assert_eq!(r.status(), 400);
    // absolute URL on the API origin works; a POST body is replayed on retry
    control("/_emulator/revoke", obj(&[("clientId", id.as_str().into())])).await;
    let init = obj(&[
        ("method", "PUT".into()),
        ("body", r#"{"firstName":"Ada"}"#.into()),
        ("headers", obj(&[("content-type", "application/json".into())])),
    ]);
    let r = api(&c, &format!("{}/useradmin/users/3", emulator()), init).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&json_of(r).await, "received.firstName").as_string().as_deref(), Some("Ada"));
    c.close();
}

#[wasm_bindgen_test]
async fn fetch_refuses_other_origins_and_unknown_routes() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    for bad in ["https://evil.example/agents-availability", "//evil.example/x", "/a/../stats", "stats"] {
        let e = api(&c, bad, JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_config"), "{bad}");
    }
    let e = api(&c, "/no-such-api", JsValue::UNDEFINED).await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_config"));
    assert!(get(&e, "message").as_string().unwrap().contains("init.scope"));
    assert_eq!(num(&stats(&id).await, "tokenAttempts"), 0.0, "no token was even requested");
    c.close();
}

#[wasm_bindgen_test]
fn bad_config_throws_invalid_config_naming_the_field() {
    let cases: Vec<(JsValue, &str)> = vec![
        (obj(&[("clientSecret", "s3cret-never-shown-x".into()), ("region", "emea".into())]), "clientId"),
        (
            obj(&[
                ("clientId", "a".into()),
                ("clientSecret", "s3cret-never-shown-x".into()),
                ("region", "mars".into()),
            ]),
            "region",
        ),
        (
            obj(&[
                ("clientId", "a".into()),
                ("clientSecret", "s3cret-never-shown-x".into()),
                ("region", "emea".into()),
                ("timeoutMs", "fast".into()),
            ]),
            "timeoutMs",
        ),
        (
            obj(&[
                ("clientId", "a".into()),
                ("clientSecret", "s3cret-never-shown-x".into()),
                ("region", "emea".into()),
                ("clientSecrte", "x".into()),
            ]),
            "unknown option",
        ),
        (obj(&[("clientId", "a".into()), ("clientSecret", 12345.into()), ("region", "emea".into())]), "clientSecret"),
        (
            obj(&[
                ("clientId", "a".into()),
                ("clientSecret", "s3cret-never-shown-x".into()),
                ("authBaseUrl", "http://evil.example".into()),
                ("apiBaseUrl", "https://x.example".into()),
            ]),
            "authBaseUrl",
        ),
        (JsValue::from_str("emea"), "options"),
    ];
    for (opts, field) in cases {
        let e = VccClient::new(opts).err().expect("must throw");
        assert_eq!(get(&e, "name").as_string().as_deref(), Some("VccError"));
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_config"));
        let m = get(&e, "message").as_string().unwrap();
        assert!(m.contains(field), "{m} should name {field}");
        assert!(!m.contains("12345"));
        assert_clean(&e, SECRET_PREFIX);
    }
}

#[wasm_bindgen_test]
async fn token_info_invalidate_and_close() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    assert!(c.token_info("stats").unwrap().is_undefined());
    let t = token(&c, "stats").await.unwrap();
    let info = c.token_info("stats").unwrap();
    let shown = JSON::stringify(&info).unwrap().as_string().unwrap();
    assert!(!shown.contains(&t) && !shown.contains("eyJ"), "{shown}");
    assert_eq!(num(&info, "fetches"), 1.0);
    assert!(num(&info, "expiresAt") > js_sys::Date::now() + 3_500_000.0);
    JsFuture::from(c.invalidate(Some("stats".into())).unwrap()).await.unwrap();
    assert_ne!(token(&c, "stats").await.unwrap(), t);
    c.close();
    let e = token(&c, "stats").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("closed"));
}

/// The emulator under another origin (localhost instead of 127.0.0.1): where a hostile
/// redirect points, so that following it would be a cross-origin leak.
fn other_origin() -> String {
    emulator().replacen("127.0.0.1", "localhost", 1)
}

/// What reached the emulator's `/_emulator/steal/<tag>` (a followed redirect would).
async fn stolen(tag: &str) -> usize {
    let all = get(&http("GET", &format!("{}/_emulator/stolen", emulator()), None).await.1, "requests");
    let all: js_sys::Array = all.unchecked_into();
    all.iter().filter(|r| get(r, "path").as_string().is_some_and(|p| p.ends_with(tag))).count()
}

#[wasm_bindgen_test]
async fn a_token_endpoint_redirect_is_never_followed() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    for status in [307u32, 302] {
        let target = format!("{}/_emulator/steal/{id}", other_origin());
        faults(&id, &[("tokenRedirect", target.as_str().into()), ("redirectStatus", status.into())]).await;
        let c = client(&id, &secret, &[]);
        let e = token(&c, "stats").await.unwrap_err();
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("redirect"), "HTTP {status}");
        assert_clean(&e, &secret);
        assert_eq!(stolen(&id).await, 0, "the redirect target received the token request (HTTP {status})");
        assert_eq!(
            num(&stats(&id).await, "tokenAttempts"),
            f64::from(if status == 307 { 1 } else { 2 }),
            "not retried"
        );
        c.close();
    }
}

#[wasm_bindgen_test]
async fn an_api_redirect_is_never_followed_with_the_token() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let c = client(&id, &secret, &[]);
    let cases = [
        (format!("{}/_emulator/steal/{id}", other_origin()), 307u32),
        ("/useradmin/users/1".to_owned(), 302),
        (format!("{}/stats/agent-status", emulator()), 302),
    ];
    for (n, (target, status)) in cases.iter().enumerate() {
        faults(&id, &[("apiRedirect", target.as_str().into()), ("redirectStatus", (*status).into())]).await;
        let e = api(&c, "/stats/agent-status", JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("redirect"), "{target}");
        assert_eq!(num(&stats(&id).await, "apiRequests"), (n + 1) as f64, "{target}: followed");
    }
    // even when the caller asks for redirects to be followed
    let init = obj(&[("redirect", "follow".into())]);
    assert!(api(&c, "/stats/agent-status", init).await.is_err());
    assert_eq!(stolen(&id).await, 0);
    assert_eq!(num(&stats(&id).await, "apiRequests"), 4.0);
    c.close();
}

#[wasm_bindgen_test]
async fn vcc_rejecting_every_token_brakes_token_requests() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    faults(&id, &[("invalidTokenAlways", true.into())]).await;
    let c = client(&id, &secret, &[]);
    // The first call: a token, rejected; a new one, rejected too: VCC's 401 comes back.
    let r = api(&c, "/stats/agent-status", JsValue::UNDEFINED).await.unwrap();
    assert_eq!(r.status(), 401);
    // Then a cooldown: calls are refused without asking for a token.
    for _ in 0..20 {
        let e = api(&c, "/stats/agent-status", JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("token_rejected"));
        assert!(num(&e, "retryAfterMs") > 0.0);
    }
    assert_eq!(num(&stats(&id).await, "tokenRequests.stats"), 2.0, "21 calls, 2 token requests");
    assert_eq!(num(&stats(&id).await, "apiRequests"), 2.0);
    // Once VCC accepts tokens again and the cooldown is over, calls work.
    faults(&id, &[]).await;
    sleep(1100).await;
    assert_eq!(api(&c, "/stats/agent-status", JsValue::UNDEFINED).await.unwrap().status(), 200);
    assert_eq!(num(&stats(&id).await, "tokenRequests.stats"), 3.0);
    c.close();
}

#[wasm_bindgen(inline_js = "
export function memoryStore() {
  const data = new Map();
  const locks = new Map();
  return {
    data,
    get: async (k) => data.get(k) ?? null,
    swap: async (k, expected, value) => {
      if ((data.get(k) ?? null) !== (expected ?? null)) return false;
      data.set(k, value);
      return true;
    },
    lock: async (k, owner) => (locks.has(k) ? false : (locks.set(k, owner), true)),
    unlock: async (k, owner) => { if (locks.get(k) === owner) locks.delete(k); },
  };
}")]
extern "C" {
    #[wasm_bindgen(js_name = memoryStore)]
    fn memory_store() -> JsValue;
}

/// The `store` option in this runtime (WebCrypto's HKDF, AES-GCM and HMAC in Node and
/// in Chromium alike): two clients share one token through it, and what it holds is
/// sealed. Redis across processes is `tests/store/`.
#[wasm_bindgen_test]
async fn two_clients_share_one_token_through_a_store_and_it_holds_it_sealed() {
    let (id, secret) = new_client_id(3600, &["*"]).await;
    let store = memory_store();
    let a = client(&id, &secret, &[("store", store.clone())]);
    let b = client(&id, &secret, &[("store", store.clone())]);
    let (ta, tb) = futures::future::join(token(&a, "stats"), token(&b, "stats")).await;
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta, tb);
    assert_eq!(num(&get(&stats(&id).await, "tokenRequests"), "stats"), 1.0);
    let data: js_sys::Map = get(&store, "data").unchecked_into();
    assert_eq!(data.size(), 1);
    data.for_each(&mut |value, name| {
        let (value, name) = (value.as_string().unwrap(), name.as_string().unwrap());
        assert!(name.len() == 64 && !name.contains(&id), "{name}");
        assert!(value.starts_with("v1.") && !value.contains(&ta[ta.len() - 12..]) && !value.contains("stats"));
    });
    // Another secret's client reads the same store: the record does not open for it,
    // and VCC does not know that secret.
    let stranger = client(&id, "another-secret", &[("store", store)]);
    let e = token(&stranger, "stats").await.unwrap_err();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("invalid_client"));
}
