// The gateway's per-request host work, one call each across the wasm boundary (the
// glue in src/glue/gateway/ imports these). Measured in workerd: copying headers entry by
// entry through wasm-bindgen, and building objects member by member, cost more CPU per
// request than everything the gateway decides. No policy lives here: which headers
// cross is the Rust core's allow-lists, handed over once as Sets (`headerSet`).

/** A Set of lower-case header names from a comma-separated list. */
export function headerSet(list) {
  return new Set(list ? list.split(",") : []);
}

/** An array of header names from a comma-separated list (made once: `Judged::names`). */
export function nameList(list) {
  return list.split(",");
}

/** What the core judges a request by, in one string: method, URL, then each header of
 *  `names` (the Rust side's `Judged`, in its order), one per line, ":"-prefixed when
 *  present and empty when absent (no header value or URL holds a line break). */
export function requestFacts(request, names) {
  const h = request.headers;
  let facts = `${request.method}\n${request.url}`;
  for (const name of names) {
    const v = h.get(name);
    facts += v === null ? "\n" : `\n:${v}`;
  }
  return facts;
}

/** Sends the caller's request upstream: only the `forward` headers, our bearer, the
 *  route's `accept` when given, the buffered body; redirects are not followed; the
 *  whole exchange is under `signal`. Returns fetch's promise. The allow-list is walked
 *  (a `get` per name), not the caller's headers (an iterator entry per header, each an
 *  array): measured in workerd, the walk costs less, and a repeated header arrives
 *  combined, as RFC 9110 allows for every name on the list. */
export function sendUpstream(request, url, method, forward, authorization, accept, body, signal) {
  const headers = new Headers();
  copyListed(request.headers, forward, null, headers);
  headers.set("authorization", authorization);
  if (accept) headers.set("accept", accept);
  const init = { method, headers, redirect: "manual", signal };
  if (body) init.body = body;
  return fetch(url, init);
}

/** Sets on `to` each header of `from` named in `names` (a Set of lower-case names) but
 *  those in `skip` (a Set, or null): a `get` per listed name (see `sendUpstream`). */
function copyListed(from, names, skip, to) {
  for (const k of names) {
    if (skip?.has(k)) continue;
    const v = from.get(k);
    if (v !== null) to.set(k, v);
  }
}

/** A promise of the caller's response from VCC's: the `pass` headers (walked as in
 *  `sendUpstream`) but those `drop` names (comma-separated, hop-by-hop), then `extra`
 *  ("name\nvalue\n..." pairs: CORS).
 *
 *  With `whole` (the core's `read_whole`: small, of known size, not encoded) the body
 *  is read first, under `signal` (the fetch's deadline): a stall or a cut then rejects,
 *  and the gateway answers 504 or 502 instead of a body that stops short; in workerd it
 *  also costs less than a pipe. Any other body streams through a pipe watched by
 *  `signal`, kept alive by `ctx.waitUntil`: workerd passes a fetched body through
 *  natively once the handler returns, with no JS left to run a timer, so without the
 *  pipe a body stalling after its head would hold the caller as long as VCC likes.
 *  IdentityTransformStream (workerd's own) keeps the pump native; TransformStream
 *  elsewhere. */
export function respondUpstream(upstream, pass, drop, extra, whole, signal, ctx) {
  const headers = new Headers();
  copyListed(upstream.headers, pass, drop ? new Set(drop.split(",")) : null, headers);
  if (extra) {
    const pairs = extra.split("\n");
    for (let i = 0; i + 1 < pairs.length; i += 2) headers.set(pairs[i], pairs[i + 1]);
  }
  const status = upstream.status;
  const body = upstream.body;
  if (!body) return Promise.resolve(new Response(null, { status, headers }));
  if (whole) return upstream.arrayBuffer().then((bytes) => new Response(bytes, { status, headers }));
  const pipe = typeof IdentityTransformStream === "function" ? new IdentityTransformStream() : new TransformStream();
  // A pipe cut off at the deadline rejects: that is the point, not an error to report.
  const done = body.pipeTo(pipe.writable, { signal }).catch(() => {});
  ctx?.waitUntil?.(done);
  return Promise.resolve(new Response(pipe.readable, { status, headers }));
}
