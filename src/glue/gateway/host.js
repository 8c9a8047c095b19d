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
 *  ("name\nvalue\n..." pairs: CORS). The body as the core's `AnswerPlan` says, under
 *  `signal` (the exchange's deadline):
 *  - 0, whole: read first (a small body of known size), so a stall or a cut rejects
 *    and the gateway answers 504 or 502 instead of a body that stops short; in workerd
 *    it also costs less than a pipe;
 *  - 1, probe: of unknown size; read up to `cap` bytes first, and if it ends by then,
 *    as whole; else what was read, then the rest, streams;
 *  - 2, stream: of known `length`, piped through a FixedLengthStream, so the answer
 *    keeps its Content-Length and a cut leaves the caller short of it (its connection
 *    fails) where a chunked body would be ended cleanly by workerd
 *    (cloudflare/workerd#6818).
 *  A stream is watched by `signal` and kept alive by `ctx.waitUntil`: workerd passes a
 *  fetched body through natively once the handler returns, with no JS left to run a
 *  timer, so without that a body stalling after its head would hold the caller as long
 *  as VCC likes. */
export function respondUpstream(upstream, pass, drop, extra, plan, length, cap, signal, ctx) {
  const headers = new Headers();
  copyListed(upstream.headers, pass, drop ? new Set(drop.split(",")) : null, headers);
  if (extra) {
    const pairs = extra.split("\n");
    for (let i = 0; i + 1 < pairs.length; i += 2) headers.set(pairs[i], pairs[i + 1]);
  }
  const status = upstream.status;
  const body = upstream.body;
  if (!body) return Promise.resolve(new Response(null, { status, headers }));
  if (plan === 0) return upstream.arrayBuffer().then((bytes) => new Response(bytes, { status, headers }));
  if (plan === 1) return probe(body, cap, signal, ctx).then((b) => new Response(b, { status, headers }));
  const pipe = typeof FixedLengthStream === "function" ? new FixedLengthStream(length) : new TransformStream();
  // A pipe cut off at the deadline rejects: that is the point, not an error to report.
  const done = body.pipeTo(pipe.writable, { signal }).catch(() => {});
  ctx?.waitUntil?.(done);
  return Promise.resolve(new Response(pipe.readable, { status, headers }));
}

/** Reads `body` up to `cap` bytes: the whole body if it ends by then, else a stream of
 *  what was read and then the rest (cut at `signal`). Rejects if the first part fails. */
async function probe(body, cap, signal, ctx) {
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return joined(chunks, total);
    chunks.push(value);
    total += value.byteLength;
    if (total > cap) break;
  }
  let finished;
  ctx?.waitUntil?.(new Promise((r) => (finished = r)));
  const cut = () => reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", cut, { once: true });
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
    },
    async pull(c) {
      try {
        const { done, value } = await reader.read();
        if (signal.aborted) throw signal.reason;
        if (done) {
          c.close();
          finished();
        } else c.enqueue(value);
      } catch (e) {
        c.error(e);
        finished();
      }
    },
    cancel(reason) {
      finished();
      return reader.cancel(reason);
    },
  });
}

/** `chunks` (of `total` bytes) as one array. */
function joined(chunks, total) {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}

/** The JSON object in standard base64 `b64` (a JWT's header or payload): atob, UTF-8,
 *  JSON.parse; null if any step fails or it is not an object. */
export function decodeJson(b64) {
  try {
    const binary = atob(b64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** WebCrypto's parameters for a JOSE algorithm the core allowed. */
const ALGORITHMS = {
  RS256: { importAs: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verifyAs: { name: "RSASSA-PKCS1-v1_5" } },
  ES256: { importAs: { name: "ECDSA", namedCurve: "P-256" }, verifyAs: { name: "ECDSA", hash: "SHA-256" } },
};

/** Imports a public JWK (the core judged it fits `alg`) for verifying. Rejects if
 *  WebCrypto refuses it. Only the public members cross. */
export function importJwk(jwk, alg) {
  const pub = alg === "RS256" ? { kty: "RSA", n: jwk.n, e: jwk.e } : { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  return crypto.subtle.importKey("jwk", pub, ALGORITHMS[alg].importAs, false, ["verify"]);
}

/** Whether `signatureB64` (standard base64) is `key`'s `alg` signature of the ASCII
 *  `signingInput`. Resolves false for a signature that cannot even be decoded. */
export async function verifyJws(key, alg, signatureB64, signingInput) {
  let signature;
  try {
    const binary = atob(signatureB64);
    signature = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) signature[i] = binary.charCodeAt(i);
  } catch {
    return false;
  }
  return crypto.subtle.verify(ALGORITHMS[alg].verifyAs, key, signature, new TextEncoder().encode(signingInput));
}

/** Fetches a JWKS: JSON accepted, redirects not followed, the whole exchange under
 *  `signal`. Returns fetch's promise. */
export function fetchJwks(url, signal) {
  return fetch(url, { headers: { accept: "application/json" }, redirect: "manual", signal });
}
