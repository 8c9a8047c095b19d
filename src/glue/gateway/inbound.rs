//! The inbound request: the facts the core judges it by, and its body.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Request};

use crate::core::gateway::Refusal;
use crate::glue::js::Timer;

#[wasm_bindgen(module = "/src/glue/gateway/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = nameList)]
    fn name_list(list: &str) -> JsValue;
    #[wasm_bindgen(js_name = requestFacts)]
    fn request_facts(request: &Request, names: &JsValue) -> String;
}

/// The request headers the core judges, in the order [`Facts`] holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// `Origin` (CORS).
    Origin,
    /// `Authorization` (the key).
    Authorization,
    /// `Content-Length` (413 before the body is read).
    ContentLength,
    /// `Access-Control-Request-Method` (a preflight).
    PreflightMethod,
    /// `Accept` (the versioned one is added when absent).
    Accept,
    /// `Cf-Access-Jwt-Assertion` (Cloudflare Access's sign-in).
    AccessAssertion,
}

/// How many headers are judged: [`Judged::ALL`] and [`Facts`] hold this many.
const JUDGED: usize = 6;

impl Judged {
    /// Every one, in order: `Facts` reads them in this order, by these names.
    const ALL: [Judged; JUDGED] = [
        Self::Origin,
        Self::Authorization,
        Self::ContentLength,
        Self::PreflightMethod,
        Self::Accept,
        Self::AccessAssertion,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Authorization => "authorization",
            Self::ContentLength => "content-length",
            Self::PreflightMethod => "access-control-request-method",
            Self::Accept => "accept",
            Self::AccessAssertion => "cf-access-jwt-assertion",
        }
    }

    /// The names as a host array, made once per isolate for [`Facts::read`].
    pub fn names() -> JsValue {
        let list: Vec<&str> = Self::ALL.iter().map(|h| h.name()).collect();
        name_list(&list.join(","))
    }
}

/// What a request is judged by: one call across the boundary (`requestFacts`).
pub struct Facts {
    pub method: String,
    pub url: String,
    headers: [Option<String>; JUDGED],
}

impl Facts {
    /// Reads method, URL and the [`Judged`] headers (`names` from [`Judged::names`]).
    pub fn read(request: &Request, names: &JsValue) -> Facts {
        let text = request_facts(request, names);
        let mut lines = text.split('\n');
        let method = lines.next().unwrap_or_default().to_owned();
        let url = lines.next().unwrap_or_default().to_owned();
        let headers = std::array::from_fn(|_| lines.next().and_then(|l| l.strip_prefix(':')).map(str::to_owned));
        Facts { method, url, headers }
    }

    /// A judged header's value, if the request had it.
    pub fn header(&self, h: Judged) -> Option<&str> {
        self.headers.get(h as usize).and_then(Option::as_deref)
    }
}

/// The bytes of request bodies this isolate holds: read, and kept until their exchange
/// with VCC ends (a 401 replays them). Shared by every request of the isolate.
#[derive(Clone)]
pub struct BodyBudget {
    held: Rc<Cell<u64>>,
    limit: u64,
}

impl BodyBudget {
    /// A budget of `limit` bytes (`BODY_BUFFER_LIMIT`).
    pub fn new(limit: u64) -> Self {
        Self { held: Rc::default(), limit }
    }

    /// Takes `n` more bytes for `body`, if the budget has them.
    fn take(&self, body: &mut Held, n: u64) -> bool {
        let held = self.held.get();
        if held.saturating_add(n) > self.limit {
            return false;
        }
        self.held.set(held + n);
        body.bytes += n;
        true
    }
}

/// What one request's body holds of the budget: given back when dropped, however the
/// request ends.
pub struct Held {
    budget: BodyBudget,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.set(self.budget.held.get().saturating_sub(self.bytes));
    }
}

/// Reads the request body, counting as it streams, refusing past `limit` (413), past
/// `timeout_ms` (408: a body trickling in must not hold a connection for ever), or past
/// the isolate's `budget` (503): a body announced by `Content-Length` takes its bytes
/// before any is read, a streamed one as they come. Buffered so it can be replayed once
/// after a 401 `invalid_token`; the [`Held`] keeps its bytes taken until dropped.
pub async fn read_body(
    request: &Request,
    declared: Option<u64>,
    limit: u64,
    timeout_ms: u32,
    budget: &BodyBudget,
) -> Result<(Option<Uint8Array>, Held), Refusal> {
    let mut held = Held { budget: budget.clone(), bytes: 0 };
    let Some(stream) = request.body() else { return Ok((None, held)) };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    // On time-out the reader is cancelled, which ends the pending read as "done".
    let timed_out = Rc::new(Cell::new(false));
    let _deadline = {
        let (timed_out, reader) = (timed_out.clone(), reader.clone());
        Timer::new(u64::from(timeout_ms), true, move || {
            timed_out.set(true);
            let _ = reader.cancel();
        })
    };
    if let Some(n) = declared.filter(|n| *n > 0) {
        if !budget.take(&mut held, n.min(limit)) {
            drain(&reader, 0).await;
            return Err(Refusal::GatewayBusy);
        }
    }
    let mut chunks = Vec::new();
    let mut total = 0u64;
    loop {
        let chunk = match next_chunk(&reader).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(_) if timed_out.get() => return Err(Refusal::BodyTimeout),
            Err(_) => return Err(Refusal::BadRequest),
        };
        total += u64::from(chunk.length());
        if total > limit {
            drop(chunks);
            drain(&reader, total).await;
            return Err(if timed_out.get() { Refusal::BodyTimeout } else { Refusal::BodyTooLarge });
        }
        let more = total.saturating_sub(held.bytes);
        if more > 0 && !budget.take(&mut held, more) {
            drop(chunks);
            drain(&reader, total).await;
            return Err(Refusal::GatewayBusy);
        }
        chunks.push(chunk);
    }
    if timed_out.get() {
        return Err(Refusal::BodyTimeout);
    }
    // Concatenated on the JS side.
    let body = Uint8Array::new_with_length(total as u32);
    let mut offset = 0u32;
    for c in &chunks {
        body.set(c, offset);
        offset += c.length();
    }
    Ok((Some(body), held))
}

/// One chunk from `reader`: `Ok(None)` at the end, `Err` if the stream failed.
async fn next_chunk(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, JsValue> {
    let step = JsFuture::from(reader.read()).await?;
    if Reflect::get(&step, &"done".into())?.as_bool().unwrap_or(true) {
        return Ok(None);
    }
    Ok(Reflect::get(&step, &"value".into())?
        .dyn_into::<Uint8Array>()
        .ok()
        .or_else(|| Some(Uint8Array::new_with_length(0))))
}

/// How much of a refused body is read and thrown away (see [`drain`]).
const DRAIN_LIMIT: u64 = 16 << 20;

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
