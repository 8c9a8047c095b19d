// The gateway benchmark's baseline: what a user could write in 15 lines instead. It
// checks one key and forwards /api/* to the same upstream with a fixed bearer token.
export default {
  async fetch(request, env) {
    if (request.headers.get("authorization") !== `Bearer ${env.KEY}`) return new Response("no", { status: 401 });
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/api/"))
      return new Response(url.pathname === "/healthz" ? "ok" : "not found", { status: url.pathname === "/healthz" ? 200 : 404 });
    const res = await fetch(`${env.UPSTREAM}${url.pathname.slice(4)}${url.search}`, {
      method: request.method,
      headers: { authorization: `Bearer ${env.TOKEN}`, accept: "application/vnd.newvoicemedia.v1+json" },
      body: request.body,
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  },
};
