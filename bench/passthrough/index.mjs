export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/api/")) return new Response("not found", { status: 404 });
    const upstream = `${env.UPSTREAM}${url.pathname.slice(4)}${url.search}`;
    const res = await fetch(upstream, {
      method: request.method,
      headers: { authorization: `Bearer ${env.TOKEN}`, accept: "application/vnd.newvoicemedia.v1+json" },
      body: request.body,
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  },
};
