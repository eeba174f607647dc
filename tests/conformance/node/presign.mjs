// Presigns a WebSocket URL with the AWS SDK's own SigV4 signer
// (@smithy/signature-v4), as a backend hands a browser a URL for an
// IAM-authorized $connect. Credentials default to the environment's.
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";

export async function presign(url, { expiresIn = 60, credentials } = {}) {
  const target = new URL(url);
  const signer = new SignatureV4({
    service: "execute-api",
    region: process.env.AWS_REGION,
    credentials: credentials ?? {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
      sessionToken: process.env.AWS_SESSION_TOKEN,
    },
    sha256: Hash.bind(null, "sha256"),
  });
  const signed = await signer.presign(
    {
      method: "GET",
      protocol: "http:",
      hostname: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      query: Object.fromEntries(target.searchParams),
      headers: { host: target.host },
    },
    { expiresIn },
  );
  target.search = new URLSearchParams(signed.query).toString();
  return target.toString();
}
