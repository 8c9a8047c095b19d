//! `/_emulator/*`: test and demo controls. Unauthenticated: bind to loopback only.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, Uri};

use crate::state::{ClientConfig, Emulator, Faults, Stolen};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewClient {
    id: String,
    secret: String,
    scopes: Vec<String>,
    lifetime_seconds: Option<u64>,
}

pub async fn health() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// Registers (or replaces) a client; tests use one client each for isolation.
pub async fn add_client(State(emu): State<Arc<Emulator>>, Json(c): Json<NewClient>) -> Response {
    if c.id.is_empty() || c.secret.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "id and secret are required" }))).into_response();
    }
    let lifetime_s = c.lifetime_seconds.unwrap_or(emu.default_lifetime_s).max(1);
    emu.add_client(c.id.clone(), ClientConfig { secret: c.secret, scopes: c.scopes, lifetime_s });
    Json(json!({ "ok": true, "id": c.id, "lifetimeSeconds": lifetime_s })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRequest {
    #[serde(default)]
    client_id: String,
    #[serde(flatten)]
    faults: Faults,
}

/// Replaces the faults of a client (or the global ones when `clientId` is absent).
pub async fn set_faults(State(emu): State<Arc<Emulator>>, Json(r): Json<FaultRequest>) -> Response {
    let mut inner = emu.lock();
    inner.faults.insert(r.client_id.clone(), r.faults.clone());
    Json(json!({ "ok": true, "clientId": r.client_id, "faults": r.faults })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientFilter {
    client_id: Option<String>,
}

/// Revokes every token (of one client, or all): the next API call gets 401 invalid_token.
pub async fn revoke(State(emu): State<Arc<Emulator>>, body: Option<Json<ClientFilter>>) -> Response {
    let filter = body.map(|b| b.0).unwrap_or_default();
    let mut inner = emu.lock();
    let mut revoked = 0;
    for t in inner.tokens.values_mut() {
        if !t.revoked && filter.client_id.as_ref().is_none_or(|id| &t.client_id == id) {
            t.revoked = true;
            revoked += 1;
        }
    }
    Json(json!({ "ok": true, "revoked": revoked })).into_response()
}

pub async fn stats(State(emu): State<Arc<Emulator>>, Query(q): Query<ClientFilter>) -> Response {
    let inner = emu.lock();
    match q.client_id {
        Some(id) => Json(json!(inner.stats.get(&id).cloned().unwrap_or_default())).into_response(),
        None => {
            let all: HashMap<_, _> = inner.stats.iter().collect();
            Json(json!({ "clients": all, "tokensIssued": inner.issued_count })).into_response()
        }
    }
}

/// The last API requests as received (Authorization shown only as valid/expired/unknown).
pub async fn requests(State(emu): State<Arc<Emulator>>, Query(q): Query<ClientFilter>) -> Response {
    let inner = emu.lock();
    let seen: Vec<_> =
        inner.seen.iter().filter(|s| q.client_id.is_none() || s.client_id == q.client_id).cloned().collect();
    Json(json!({ "requests": seen })).into_response()
}

/// `ANY /_emulator/steal/*`: stands for the host a redirect points at. Records what
/// arrived (that nothing does is what the tests assert).
pub async fn steal(
    State(emu): State<Arc<Emulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let hit = Stolen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    emu.lock().stolen.push(hit);
    Json(json!({ "stolen": true })).into_response()
}

/// `GET /_emulator/stolen`: what reached `/_emulator/steal`.
pub async fn stolen(State(emu): State<Arc<Emulator>>) -> Response {
    Json(json!({ "requests": emu.lock().stolen })).into_response()
}

/// Clears faults, tokens, counters and the request log (clients stay).
pub async fn reset(State(emu): State<Arc<Emulator>>) -> Response {
    let mut inner = emu.lock();
    inner.faults.clear();
    inner.tokens.clear();
    inner.stats.clear();
    inner.seen.clear();
    inner.stolen.clear();
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize)]
pub struct NewRoute {
    methods: String,
    prefix: String,
    scope: String,
}

/// `POST /_emulator/routes [{methods, prefix, scope}]`: adds APIs that the crate's table
/// lacks (kept to the same row rules). Each answers `{"route": prefix, "method", "path"}`
/// to a token with its scope.
pub async fn add_routes(State(emu): State<Arc<Emulator>>, Json(rows): Json<Vec<NewRoute>>) -> Response {
    let mut added = Vec::new();
    for r in rows {
        let route = vcc_auth::core::routes::Methods::parse(&r.methods)
            .ok_or("bad methods")
            .and_then(|m| vcc_auth::core::routes::Route::new(m, &r.prefix, &r.scope));
        match route {
            Ok(route) => added.push(route),
            Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
        }
    }
    let n = added.len();
    emu.lock().extra_routes.extend(added);
    Json(json!({ "ok": true, "added": n })).into_response()
}
