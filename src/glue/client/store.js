// The token store's crypto, with WebCrypto (Node 20+, browsers in a secure context,
// workerd, Deno, Bun): keys derived from the client secret, record names, sealing. No
// policy here: what a record holds and when it is written is the Rust core's
// (core/store.rs); the store itself sees only what these functions return.
//
// HKDF-SHA-256 over the secret gives two keys, neither extractable: AES-256-GCM to seal
// records (the record's name is the additional data, so a record moved under another
// name does not open), and HMAC-SHA-256 to name them (no name shows the client id or
// the scopes, and a process with another secret has names of its own).

const te = new TextEncoder();
const SALT = te.encode("vcc-auth token store v1");

/** The sealing and naming keys for `secret`: `{ seal, name }`. */
export async function storeKeys(secret) {
  const ikm = await crypto.subtle.importKey("raw", te.encode(secret), "HKDF", false, ["deriveKey"]);
  const derive = (info, algorithm, usages) =>
    crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: SALT, info: te.encode(info) }, ikm, algorithm, false, usages);
  return {
    seal: await derive("vcc-auth record sealing", { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]),
    name: await derive("vcc-auth record naming", { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign"]),
  };
}

/** The record name for `parts` (auth base, client id and scope set): hex HMAC. */
export async function storeName(keys, parts) {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", keys.name, te.encode(parts)));
  let hex = "";
  for (const b of mac) hex += b.toString(16).padStart(2, "0");
  return hex;
}

const b64url = (bytes) => {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};
const unb64url = (text) => {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
};

/** `text` sealed for the record `name`: `v1.<iv>.<ciphertext>`, base64url. The
 *  plaintext's bytes are overwritten once sealed. */
export async function seal(keys, name, text) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = te.encode(text);
  try {
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: te.encode(name) }, keys.seal, plain);
    return `v1.${b64url(iv)}.${b64url(new Uint8Array(sealed))}`;
  } finally {
    plain.fill(0);
  }
}

/** The text sealed in `sealed` for the record `name`, or null: another format, another
 *  secret's keys, another name, or damage. */
export async function open(keys, name, sealed) {
  const parts = typeof sealed === "string" ? sealed.split(".") : [];
  if (parts.length !== 3 || parts[0] !== "v1") return null;
  let plain;
  try {
    const iv = unb64url(parts[1]);
    if (iv.length !== 12) return null;
    plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: te.encode(name) }, keys.seal, unb64url(parts[2])),
    );
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch {
    return null;
  } finally {
    plain?.fill(0);
  }
}

/** Who holds a lock: a random id per flight. */
export function lockOwner() {
  return crypto.randomUUID();
}
