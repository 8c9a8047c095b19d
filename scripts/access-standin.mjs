// A stand-in for Cloudflare Access, for `make demo` and the page's tests only: a small
// proxy in front of the gateway that signs a demo person in and adds their signed JWT to
// every request as `Cf-Access-Jwt-Assertion`, as Access does in front of a real
// deployment. The VCC emulator is the identity provider: it signs the JWTs and publishes
// its keys where Access publishes a team's (`/cdn-cgi/access/certs`).
//
// Like Access it answers on the application's own origin:
//   /cdn-cgi/access/login         pick a demo person (or go on with a gateway key)
//   /cdn-cgi/access/logout        forget the sign-in
//   /cdn-cgi/access/get-identity  who is signed in (email, name, groups)
// Unlike Access it lets a visitor go on without signing in (the page's key flow), and it
// trusts its own cookie without checking it: it is never to be deployed.
import { createServer, request as httpRequest } from "node:http";

/** The demo's people: one per role the policy below knows. */
export const DEMO_PEOPLE = {
  supervisor: { sub: "demo-supervisor", name: "Sam Rivera", email: "sam@contoso.example", groups: ["contact-centre-supervisors"] },
  analyst: { sub: "demo-analyst", name: "Alex Chen", email: "alex@contoso.example", groups: ["analysts"] },
  admin: { sub: "demo-admin", name: "Robin Okafor", email: "robin@contoso.example", groups: ["gateway-admins"] },
};

/** GATEWAY_ACCESS_POLICY for the demo: everyone at contoso sees stats, supervisors also
 *  agents' availability, gateway admins everything and the gateway's details. */
export const DEMO_POLICY = [
  { email: "*@contoso.example", scopes: ["stats"] },
  { claim: "groups", value: "contact-centre-supervisors", scopes: ["agents-availability:read"] },
  { claim: "groups", value: "gateway-admins", scopes: ["*"], admin: true },
];

/** The audience the demo's JWTs name (Access's application AUD tag). */
export const DEMO_AUDIENCE = "vcc-auth-demo";

const SESSION_COOKIE = "CF_Authorization";
const NO_SIGN_IN_COOKIE = "vcc_demo_no_sign_in";
const SESSION_SECONDS = 8 * 3600;

const cookies = (header = "") =>
  Object.fromEntries(
    header
      .split(";")
      .map((c) => c.trim().split("="))
      .filter(([k, v]) => k && v !== undefined)
      .map(([k, ...v]) => [k, v.join("=")]),
  );

/** The claims of the session's JWT, if it has one that has not expired. The stand-in
 *  made the JWT itself; the gateway is what checks it. */
function session(req) {
  const jwt = cookies(req.headers.cookie)[SESSION_COOKIE];
  if (!jwt) return null;
  try {
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
    return claims.exp * 1000 > Date.now() ? { jwt, claims } : null;
  } catch {
    return null;
  }
}

const html = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** Where to go back to after signing in: a path on this origin only. */
const backTo = (to) => (typeof to === "string" && to.startsWith("/") && !to.startsWith("//") && !to.includes("\\") ? to : "/");

function signInPage(to) {
  const people = Object.entries(DEMO_PEOPLE)
    .map(
      ([role, p]) =>
        `<li><button name="person" value="${role}">${html(p.name)}</button> <span>${role} · ${html(p.email)} · groups: ${html(p.groups.join(", "))}</span></li>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in (demo stand-in for Cloudflare Access)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}li{margin:.5rem 0}button{font:inherit;padding:.3rem .8rem}span{color:#555}</style>
</head><body>
<h1>Sign in</h1>
<p>This page stands in for Cloudflare Access in <code>make demo</code>. Pick a demo person: the VCC emulator,
acting as the identity provider, signs a JWT for them, and every request to the gateway carries it.</p>
<form method="post" action="/cdn-cgi/access/login"><input type="hidden" name="to" value="${html(to)}"><ul>
${people}
</ul>
<p><button name="person" value="none">Go on without signing in</button> <span>and use a gateway key, as a script would</span></p>
</form></body></html>`;
}

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "cache-control": "no-store",
};

/**
 * Starts the stand-in on `port` (0: any) in front of `gatewayUrl`, with the emulator at
 * `issuerUrl` signing. Resolves to { url, stop }.
 */
export async function startAccessStandIn({ port = 0, gatewayUrl, issuerUrl, audience = DEMO_AUDIENCE }) {
  const gateway = new URL(gatewayUrl);
  const signIn = async (role) => {
    const person = DEMO_PEOPLE[role];
    const r = await fetch(`${issuerUrl}/_emulator/idp/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ alg: "RS256", lifetimeSeconds: SESSION_SECONDS, claims: { aud: audience, ...person } }),
    });
    if (!r.ok) throw new Error(`the emulator did not sign a JWT: ${r.status}`);
    return (await r.json()).token;
  };
  const cookie = (name, value, maxAge) => `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}`;
  const redirect = (res, to, setCookies = []) => {
    res.writeHead(303, { location: to, "set-cookie": setCookies, "cache-control": "no-store" });
    res.end();
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const path = url.pathname;
    try {
      if (path === "/cdn-cgi/access/login" && req.method === "GET") {
        res.writeHead(200, PAGE_HEADERS);
        return res.end(signInPage(backTo(url.searchParams.get("to"))));
      }
      if (path === "/cdn-cgi/access/login" && req.method === "POST") {
        let body = "";
        for await (const chunk of req) {
          body += chunk;
          if (body.length > 1024) return res.writeHead(413).end();
        }
        const form = new URLSearchParams(body);
        const [role, to] = [form.get("person"), backTo(form.get("to"))];
        if (role === "none") return redirect(res, to, [cookie(NO_SIGN_IN_COOKIE, "1", SESSION_SECONDS), cookie(SESSION_COOKIE, "", 0)]);
        if (!Object.hasOwn(DEMO_PEOPLE, role)) return redirect(res, "/cdn-cgi/access/login");
        return redirect(res, to, [cookie(SESSION_COOKIE, await signIn(role), SESSION_SECONDS), cookie(NO_SIGN_IN_COOKIE, "", 0)]);
      }
      if (path === "/cdn-cgi/access/logout") {
        return redirect(res, "/cdn-cgi/access/login", [cookie(SESSION_COOKIE, "", 0), cookie(NO_SIGN_IN_COOKIE, "", 0)]);
      }
      const signedIn = session(req);
      if (path === "/cdn-cgi/access/get-identity") {
        const body = signedIn
          ? { sub: signedIn.claims.sub, email: signedIn.claims.email, name: signedIn.claims.name, groups: signedIn.claims.groups }
          : { err: "not signed in" };
        res.writeHead(signedIn ? 200 : 401, { "content-type": "application/json", "cache-control": "no-store" });
        return res.end(JSON.stringify(body));
      }
      // Access sends a visitor with no session to sign in before anything else.
      if (!signedIn && !cookies(req.headers.cookie)[NO_SIGN_IN_COOKIE] && req.method === "GET" && path === "/") {
        return redirect(res, `/cdn-cgi/access/login?to=${encodeURIComponent(req.url)}`);
      }
      // Everything else goes to the gateway, with the sign-in as Access sends it; a
      // caller's own Cf-Access-Jwt-Assertion never passes (Access would not let it).
      const headers = { ...req.headers, host: gateway.host };
      delete headers["cf-access-jwt-assertion"];
      if (signedIn) headers["cf-access-jwt-assertion"] = signedIn.jwt;
      const up = httpRequest({ host: gateway.hostname, port: gateway.port, method: req.method, path: req.url, headers }, (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      up.on("error", () => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end("the demo's Access stand-in could not reach the gateway");
      });
      req.pipe(up);
    } catch (e) {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`the demo's Access stand-in failed: ${e.message}`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  const stop = () => {
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    return closed;
  };
  return { url, stop };
}
