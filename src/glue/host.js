// Host work both builds share (the client's and the gateway's glue in http.rs import
// it). A loop of awaits over JS values costs far more wasm written in Rust through
// wasm-bindgen (a state machine, a JsFuture and a property read per step) than it costs
// JS to run: measured with twiggy, the Rust reader was ~3 KB of the npm package's wasm.
// No policy lives here: the caps and what an answer means stay in the Rust core.

/** The body of `response` as text if it is at most `cap` bytes of valid UTF-8, else
 *  null; past `cap` the rest is cancelled, never buffered. Rejects if the stream fails
 *  (a deadline's abort included), so the caller can tell a timeout from the network.
 *  A byte-order mark is kept, as Rust's `String::from_utf8` would keep it. */
export async function readCapped(response, cap) {
  const body = response.body;
  if (body === null) return "";
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Sends a token request: a form POST accepting JSON, with HTTP Basic when `basic`
 *  (`id:secret`, form-encoded as RFC 6749 2.3.1 says) is given; redirects are not
 *  followed and the whole exchange is under `signal`. Returns fetch's promise; throws
 *  if the runtime cannot build the request (`basic` outside Latin-1). */
export function postForm(url, body, basic, signal) {
  const headers = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  if (basic !== undefined) headers.authorization = `Basic ${btoa(basic)}`;
  return fetch(url, { method: "POST", headers, body, redirect: "manual", signal });
}

/** The client's API request to `url`: `init` applied as `fetch` applies it, then
 *  redirects set to manual, so the bearer token never follows one. Throws, as
 *  `new Request` does, on an `init` it cannot use. */
export function apiRequest(url, init) {
  return new Request(new Request(url, init), { redirect: "manual" });
}

/** One attempt of a client API call: a copy of `request` (a retry sends its body again)
 *  with our bearer and, unless the caller set one, the route's `accept`. Throws if the
 *  body was already used; else returns fetch's promise. */
export function sendApi(request, authorization, accept) {
  const attempt = request.clone();
  attempt.headers.set("authorization", authorization);
  if (!attempt.headers.has("accept")) attempt.headers.set("accept", accept);
  return fetch(attempt);
}

/** For `__primeQueue` (js.rs): hides `globalThis.queueMicrotask` and returns what puts
 *  it back. Hides nothing (and restores nothing) if the runtime will not let it be
 *  shadowed. */
export function hideQueueMicrotask() {
  const own = Object.getOwnPropertyDescriptor(globalThis, "queueMicrotask");
  if (own !== undefined && !own.configurable) return () => {};
  try {
    Object.defineProperty(globalThis, "queueMicrotask", { value: undefined, configurable: true, writable: true });
  } catch {
    return () => {}; // a frozen global: the queue keeps queueMicrotask, nothing breaks
  }
  return () => {
    if (own === undefined) delete globalThis.queueMicrotask;
    else Object.defineProperty(globalThis, "queueMicrotask", own);
  };
}
