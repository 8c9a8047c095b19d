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
