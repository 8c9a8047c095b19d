//! The inbound request: the facts the core judges it by, and its body.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ReadableStreamDefaultReader, Request};

use crate::core::gateway::Refusal;
use crate::glue::http::{collect, next_chunk, Collected};
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
}

impl Judged {
    /// Every one, in order: `Facts` reads them in this order, by these names.
    const ALL: [Judged; 5] =
        [Self::Origin, Self::Authorization, Self::ContentLength, Self::PreflightMethod, Self::Accept];

    fn name(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Authorization => "authorization",
            Self::ContentLength => "content-length",
            Self::PreflightMethod => "access-control-request-method",
            Self::Accept => "accept",
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
    headers: [Option<String>; 5],
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

/// Reads the request body, counting as it streams, refusing past `limit` (413) or past
/// `timeout_ms` (408: a body trickling in must not hold a connection for ever).
/// Buffered so it can be replayed once after a 401 `invalid_token`.
pub async fn read_body(request: &Request, limit: u64, timeout_ms: u32) -> Result<Option<Uint8Array>, Refusal> {
    let Some(stream) = request.body() else { return Ok(None) };
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
