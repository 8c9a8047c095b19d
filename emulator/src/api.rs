//! The VCC APIs of the crate's route table (`vcc_auth::core::routes`, the one table), with
//! VCC's auth behaviour and sample data. Which scope a path needs comes from that table;
//! what each API answers is [`canned`], one arm per row's prefix, and a test fails for a
//! row that has none. Adding an API is a row there and an arm here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use vcc_auth::core::routes::{self, Route, RouteMatch};

use crate::state::{now_ms, Emulator, Seen};

/// A redirect to `location` (a fault: VCC never redirects its API or token endpoint).
pub fn redirect(status: u16, location: &str) -> Response {
    let status =
        StatusCode::from_u16(status).ok().filter(StatusCode::is_redirection).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut r = json_response(status, json!({ "message": "moved" }));
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A body sent as `head`, then `pad` bytes of `x` in 64 KiB chunks, then `tail`, with a
/// stall of `stall_ms` after the first chunk: an upstream that answers and then hangs,
/// or one whose body is far larger than anything worth buffering.
fn slow_body(head: Bytes, pad: u64, tail: Bytes, stall_ms: u64) -> Body {
    const CHUNK: u64 = 64 << 10;
    let stream = futures_util::stream::unfold((0u8, pad), move |(stage, left)| {
        let (head, tail) = (head.clone(), tail.clone());
        async move {
            match stage {
                0 => Some((Ok::<Bytes, std::io::Error>(head), (1, left))),
                1 if stall_ms > 0 => {
                    tokio::time::sleep(Duration::from_millis(stall_ms)).await;
                    Some((Ok(Bytes::new()), (2, left)))
                }
                1 | 2 if left > 0 => {
                    let n = left.min(CHUNK);
                    Some((Ok(Bytes::from(vec![b'x'; n as usize])), (2, left - n)))
                }
                1 | 2 => Some((Ok(tail), (3, 0))),
                _ => None,
            }
        }
    });
    Body::from_stream(stream)
}

/// 401 `invalid_token` with a body of `bytes` bytes (padded JSON) and no
/// `WWW-Authenticate`, so only reading the whole body would tell what it is.
fn huge_401(bytes: u64, stall_ms: u64) -> Response {
    let head = Bytes::from_static(
        br#"{"error":"invalid_token","error_description":"The access token is invalid or has expired","padding":""#,
    );
    let tail = Bytes::from_static(br#""}"#);
    let pad = bytes.saturating_sub((head.len() + tail.len()) as u64);
    let mut r = Response::new(slow_body(head, pad, tail, stall_ms));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

fn invalid_token() -> Response {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "invalid_token", "error_description": "The access token is invalid or has expired" }),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
    r
}

/// What a hostile upstream could echo back to the gateway's caller.
fn echo_headers(response: &mut Response, authorization: Option<&str>) {
    let h = response.headers_mut();
    if let Some(v) = authorization.and_then(|a| header::HeaderValue::from_str(a).ok()) {
        h.insert(header::AUTHORIZATION, v);
    }
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "authorization"),
        ("location", "http://evil.example.test/phish"),
        ("refresh", "0; url=http://evil.example.test/phish"),
        ("connection", "etag"),
        ("etag", "\"hop-by-hop\""),
        ("x-upstream-secret", "internal"),
    ] {
        h.insert(header::HeaderName::from_static(name), header::HeaderValue::from_static(value));
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// The route-table row a request falls under, or an error answer for unknown paths and
/// methods.
fn route_of(extra: &[Route], method: &Method, path: &str) -> Result<Route, StatusCode> {
    match routes::lookup_in(extra, method.as_str(), path) {
        RouteMatch::Found(route) => Ok(route.clone()),
        RouteMatch::MethodNotAllowed => Err(StatusCode::METHOD_NOT_ALLOWED),
        RouteMatch::NotFound => Err(StatusCode::NOT_FOUND),
    }
}

const SKILLS: &[(&str, [u32; 4])] =
    &[("Sales", [10, 3, 0, 2]), ("Service", [7, 1, 2, 4]), ("Support", [5, 2, 1, 6]), ("Billing", [3, 0, 1, 1])];

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn agents_availability(query: Option<&str>) -> Value {
    let wanted: Option<Vec<String>> =
        query_param(query, "skillNames").map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let mut totals = [0u32; 4];
    for (name, counts) in SKILLS {
        if wanted.as_ref().is_none_or(|w| w.iter().any(|x| x.eq_ignore_ascii_case(name))) {
            for (t, c) in totals.iter_mut().zip(counts) {
                *t += c;
            }
        }
    }
    json!({ "Ready": totals[0], "Away": totals[1], "Extended Away": totals[2], "Logged Out": totals[3] })
}

const FIRST: &[&str] =
    &["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Radia", "Tim"];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Berners-Lee",
];
const USER_COUNT: u32 = 42;

fn user(id: u32) -> Value {
    let i = (id - 1) as usize;
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i * 5 + 3) % LAST.len()];
    let presence = ["Ready", "Away", "Extended Away", "Logged Out"][i % 4];
    json!({
        "id": id,
        "userName": format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
        "firstName": first,
        "lastName": last,
        "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
        "active": !id.is_multiple_of(7),
        "presence": presence,
    })
}

fn users(query: Option<&str>) -> Value {
    let page: u32 = query_param(query, "page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let limit: u32 =
        query_param(query, "limit").and_then(|p| p.parse().ok()).filter(|l| (1..=100).contains(l)).unwrap_or(10);
    let active_only = query_param(query, "include").is_some_and(|v| v.eq_ignore_ascii_case("Active"));
    let all: Vec<Value> = (1..=USER_COUNT).map(user).filter(|u| !active_only || u["active"] == json!(true)).collect();
    let total = all.len() as u32;
    let items: Vec<Value> = all.into_iter().skip(((page - 1) * limit) as usize).take(limit as usize).collect();
    json!({ "items": items, "page": page, "limit": limit, "total": total })
}

fn stats(path: &str) -> Option<Value> {
    Some(match path {
        "/stats/agent-status" => json!({ "items": [
            { "agentId": 1, "name": "Ada Lovelace", "status": "Ready", "secondsInStatus": 312 },
            { "agentId": 2, "name": "Grace Hopper", "status": "Busy", "secondsInStatus": 75 },
            { "agentId": 3, "name": "Alan Turing", "status": "Away", "secondsInStatus": 940 },
            { "agentId": 4, "name": "Edsger Dijkstra", "status": "Wrap Up", "secondsInStatus": 20 },
        ]}),
        "/stats/agent-activities" => {
            json!({ "items": [{ "agentId": 1, "activity": "Inbound call", "count": 14 }] })
        }
        "/stats/interactions" => json!({ "offered": 120, "answered": 112, "abandoned": 8 }),
        "/stats/queue-times" => {
            json!({ "items": [{ "queue": "Sales", "averageWaitSeconds": 34, "longestWaitSeconds": 181 }] })
        }
        _ => return None,
    })
}

fn interaction_content(method: &Method, path: &str, query: Option<&str>) -> Response {
    let rest = path.trim_start_matches("/interaction-content/interactions").trim_start_matches('/');
    let segs: Vec<&str> = if rest.is_empty() { vec![] } else { rest.split('/').collect() };
    match (method.clone(), segs.as_slice()) {
        (Method::GET, []) => json_response(
            StatusCode::OK,
            json!({ "items": [
                { "guid": "5f0c2a8e-0001", "start": query_param(query, "start"), "channel": "Voice", "contentKeys": ["recording"] },
                { "guid": "5f0c2a8e-0002", "start": query_param(query, "start"), "channel": "Chat", "contentKeys": ["transcript"] },
            ]}),
        ),
        (Method::GET, [guid]) => {
            json_response(StatusCode::OK, json!({ "guid": guid, "channel": "Voice", "contentKeys": ["recording"] }))
        }
        (Method::GET, [_, "content", key]) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], format!("content of {key}"))
                .into_response()
        }
        (Method::DELETE, [_]) => StatusCode::NO_CONTENT.into_response(),
        (Method::POST, ["delete-batch"]) => json_response(StatusCode::OK, json!({ "accepted": true })),
        _ => json_response(StatusCode::NOT_FOUND, json!({ "message": "Not Found" })),
    }
}

/// The Webhooks API's subscriptions (VCC administration settings): one sample, and
/// writes echoed back.
fn webhooks(method: &Method, path: &str, body: &Bytes) -> Response {
    let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = path.strip_prefix("/webhooks/subscriptions").unwrap_or("").trim_start_matches('/');
    let sample = json!({ "id": "sub-1", "event": "interaction.completed", "url": "https://hooks.example.com/vcc", "active": true });
    match (method.clone(), id) {
        (Method::GET | Method::HEAD, "") => json_response(StatusCode::OK, json!({ "items": [sample] })),
        (Method::GET | Method::HEAD, "sub-1") => json_response(StatusCode::OK, sample),
        (Method::POST, "") => json_response(StatusCode::CREATED, json!({ "id": "sub-2", "received": sent })),
        (Method::PUT | Method::PATCH, "sub-1") => {
            json_response(StatusCode::OK, json!({ "id": "sub-1", "updated": true, "received": sent }))
        }
        (Method::DELETE, "sub-1") => StatusCode::NO_CONTENT.into_response(),
        _ => json_response(StatusCode::NOT_FOUND, json!({ "message": "Subscription not found" })),
    }
}

fn valid_accept(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| {
        a.split(',').any(|part| {
            let p = part.trim().to_ascii_lowercase();
            p.strip_prefix("application/vnd.newvoicemedia.v")
                .and_then(|r| r.strip_suffix("+json"))
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

pub async fn api(
    State(emu): State<Arc<Emulator>>,
    switch: Option<axum::extract::Extension<crate::state::DropSwitch>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let token = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
    let now = now_ms();
    let issued = token.and_then(|t| emu.lock().tokens.get(t).cloned());
    let client_id = issued.as_ref().map(|i| i.client_id.clone());

    let delay = client_id.as_deref().map(|c| emu.lock().fault_flag(c, |f| f.api_delay_ms)).unwrap_or(0);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let faults = client_id.as_deref().and_then(|c| emu.lock().faults_of(c).cloned()).unwrap_or_default();
    let reset = client_id.as_deref().is_some_and(|c| {
        let mut inner = emu.lock();
        let reset = inner.take_fault(c, |f| &mut f.api_reset);
        if reset {
            inner.stats_for(c).api_requests += 1;
        }
        reset
    });
    if reset {
        return crate::state::drop_connection(switch.as_deref()).await;
    }
    let mut response = if let Some(location) = &faults.api_redirect {
        redirect(faults.redirect_status.unwrap_or(307), location)
    } else if faults.invalid_token_always
        || faults.invalid_token_path.as_deref().is_some_and(|p| path == p || path.starts_with(&[p, "/"].concat()))
    {
        invalid_token()
    } else if faults.api401_body_bytes > 0 {
        huge_401(faults.api401_body_bytes, faults.api_stall_ms)
    } else {
        answer(&emu, &method, &path, query.as_deref(), &headers, token, issued.as_ref(), now, &body)
    };
    if faults.api_echo_headers {
        echo_headers(&mut response, auth.as_deref());
    }
    if faults.api_stall_ms > 0 && faults.api401_body_bytes == 0 {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        let pad = faults.api_stall_pad;
        let slow = slow_body(Bytes::copy_from_slice(head), pad, Bytes::copy_from_slice(tail), faults.api_stall_ms);
        response = Response::from_parts(parts, slow);
        if faults.api_stall_sized {
            let length = bytes.len() as u64 + pad;
            response.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
        } else {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
    }

    let mut seen_headers = BTreeMap::new();
    for (name, value) in &headers {
        let v = if name == header::AUTHORIZATION {
            match (&issued, token) {
                (Some(i), _) if i.valid_at(now) => "Bearer <valid token>".to_owned(),
                (Some(i), _) if i.revoked => "Bearer <revoked token>".to_owned(),
                (Some(_), _) => "Bearer <expired token>".to_owned(),
                (None, Some(_)) => "Bearer <unknown token>".to_owned(),
                (None, None) => "<not a bearer token>".to_owned(),
            }
        } else {
            value.to_str().unwrap_or("<binary>").to_owned()
        };
        seen_headers.insert(name.as_str().to_owned(), v);
    }
    // Real APIs sit behind load balancers that set cookies; the gateway must drop them.
    response
        .headers_mut()
        .insert(header::SET_COOKIE, header::HeaderValue::from_static("AWSALB=emulated-lb-cookie; Path=/"));
    let truncate = {
        let mut inner = emu.lock();
        let status = response.status().as_u16();
        if let Some(c) = &client_id {
            let s = inner.stats_for(c);
            s.api_requests += 1;
            match status {
                401 if response.headers().contains_key(header::WWW_AUTHENTICATE) => s.api_401_invalid_token += 1,
                401 => s.api_401_unauthorized += 1,
                _ => {}
            }
        }
        if emu.verbose {
            eprintln!("{method} {path} -> {status}");
        }
        let truncate = client_id.as_deref().is_some_and(|c| inner.take_fault(c, |f| &mut f.api_truncated));
        inner.record(Seen {
            method: method.to_string(),
            path,
            query,
            headers: seen_headers,
            client_id,
            status,
            at: now,
        });
        truncate
    };
    if truncate {
        return crate::state::truncated(response).await;
    }
    response
}

#[allow(clippy::too_many_arguments)]
fn answer(
    emu: &Emulator,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    token: Option<&str>,
    issued: Option<&crate::state::Issued>,
    now: u64,
    body: &Bytes,
) -> Response {
    let extra = emu.lock().extra_routes.clone();
    let route = match route_of(&extra, method, path) {
        Ok(r) => r,
        Err(StatusCode::METHOD_NOT_ALLOWED) => {
            return json_response(StatusCode::METHOD_NOT_ALLOWED, json!({ "message": "Method Not Allowed" }))
        }
        Err(_) => return json_response(StatusCode::NOT_FOUND, json!({ "message": "Not Found" })),
    };
    if token.is_none() {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_request", "error_description": "The access token is missing" }),
        );
    }
    let Some(issued) = issued.filter(|i| i.valid_at(now)) else {
        return invalid_token();
    };
    if !issued.scopes.iter().any(|s| *s == route.scope) {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "message": "Unauthorized" }));
    }
    if !valid_accept(headers) {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "message": "Invalid api-version! Use an Accept header such as application/vnd.newvoicemedia.v1+json" }),
        );
    }
    if emu.lock().take_fault(&issued.client_id, |f| &mut f.api5xx) {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({ "message": "Service Unavailable" }));
    }
    if emu.lock().take_fault(&issued.client_id, |f| &mut f.api429) {
        let retry_after = emu.lock().retry_after(&issued.client_id);
        let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, json!({ "message": "Too Many Requests" }));
        if let Some(s) = retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        return r;
    }
    if emu.lock().take_fault(&issued.client_id, |f| &mut f.api_garbage) {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], "{\"agents\": [tru")
            .into_response();
    }
    if body.len() > 100 * 1024 {
        return json_response(StatusCode::PAYLOAD_TOO_LARGE, json!({ "message": "Request body too large" }));
    }
    if extra.contains(&route) {
        return json_response(
            StatusCode::OK,
            json!({ "route": &*route.prefix, "method": method.as_str(), "path": path }),
        );
    }
    canned(&route, method, path, query, body)
        .unwrap_or_else(|| json_response(StatusCode::NOT_FOUND, json!({ "message": "Not Found" })))
}

/// What VCC answers to an authorised call, by the route-table row it falls under; `None`
/// for a row the emulator has no answer for (a test catches that).
fn canned(route: &Route, method: &Method, path: &str, query: Option<&str>, body: &Bytes) -> Option<Response> {
    let not_found = |what: &str| json_response(StatusCode::NOT_FOUND, json!({ "message": what }));
    Some(match &*route.prefix {
        "/agents-availability" => json_response(StatusCode::OK, agents_availability(query)),
        "/useradmin/users" => match path.strip_prefix("/useradmin/users").unwrap_or("") {
            "" | "/" if *method == Method::GET || *method == Method::HEAD => {
                json_response(StatusCode::OK, users(query))
            }
            "" | "/" => {
                let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                json_response(StatusCode::CREATED, json!({ "id": USER_COUNT + 1, "received": sent }))
            }
            id => match id.trim_start_matches('/').parse::<u32>().ok().filter(|i| (1..=USER_COUNT).contains(i)) {
                Some(i) if *method == Method::GET || *method == Method::HEAD => json_response(StatusCode::OK, user(i)),
                Some(i) => {
                    let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    json_response(StatusCode::OK, json!({ "id": i, "updated": true, "received": sent }))
                }
                None => not_found("User not found"),
            },
        },
        "/interaction-content"
        | "/interaction-content/interactions"
        | "/interaction-content/interactions/delete-batch" => interaction_content(method, path, query),
        "/stats" => stats(path).map_or_else(|| not_found("Not Found"), |v| json_response(StatusCode::OK, v)),
        "/webhooks/subscriptions" => webhooks(method, path, body),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_accept_is_required() {
        let mut h = HeaderMap::new();
        assert!(!valid_accept(&h));
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!valid_accept(&h));
        h.insert(header::ACCEPT, "application/json, application/vnd.newvoicemedia.v1+json".parse().unwrap());
        assert!(valid_accept(&h));
        h.insert(header::ACCEPT, "application/vnd.newvoicemedia.vX+json".parse().unwrap());
        assert!(!valid_accept(&h));
    }

    #[test]
    fn routes_match_whole_segments() {
        let scope = |m: &Method, p: &str| route_of(&[], m, p).map(|r| r.scope.to_string());
        assert_eq!(scope(&Method::GET, "/stats/agent-status"), Ok("stats".to_string()));
        assert_eq!(scope(&Method::GET, "/statsx"), Err(StatusCode::NOT_FOUND));
        assert_eq!(scope(&Method::POST, "/stats"), Err(StatusCode::METHOD_NOT_ALLOWED));
        assert_eq!(scope(&Method::PUT, "/useradmin/users/1"), Ok("users:write".to_string()));
        assert_eq!(
            scope(&Method::DELETE, "/interaction-content/interactions/x"),
            Ok("interaction-content:delete".to_string())
        );
    }

    /// One route table: every row of the crate's table has a canned answer here. A new
    /// row without one fails this test (and would answer 404 to the tests and the demo).
    #[test]
    fn every_route_in_the_table_has_an_answer() {
        for route in routes::ROUTES {
            let method = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .into_iter()
                .find(|m| route.methods.allows(m))
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .unwrap();
            assert!(
                canned(route, &method, &route.prefix, None, &Bytes::new()).is_some(),
                "the emulator has no answer for {method} {} ({})",
                route.prefix,
                route.scope
            );
        }
    }

    #[test]
    fn availability_sums_the_requested_skills() {
        assert_eq!(agents_availability(Some("skillNames=Sales,Service"))["Ready"], 17);
        assert_eq!(agents_availability(Some("skillNames=sales"))["Ready"], 10);
        assert_eq!(agents_availability(None)["Ready"], 25);
    }
}
