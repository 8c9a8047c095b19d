// A route handler of the App Router, on the Node runtime (the default), calling VCC
// server-side: where the secret is safe.
import { VccClient, VccError } from "vcc-auth";

export const dynamic = "force-dynamic";

export async function GET() {
  const { EMU, CLIENT_ID, CLIENT_SECRET } = process.env;
  const options = { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, authBaseUrl: EMU, apiBaseUrl: EMU };
  const client = new VccClient(options);
  const token = await client.getToken("agents-availability:read");
  const res = await client.fetch("/agents-availability?skillNames=Sales");
  await res.text();
  let error;
  try {
    await new VccClient({ ...options, clientSecret: "not-the-secret" }).getToken("stats");
  } catch (e) {
    error = e instanceof VccError ? e.code : `not a VccError: ${e}`;
  }
  client.close();
  return Response.json({ tokenLength: token.length, status: res.status, error });
}
