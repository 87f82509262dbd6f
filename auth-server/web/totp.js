// RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps: what the server and authenticator apps use),
// computed in the browser with WebCrypto. The server never shows a ticket's secret again, so
// the wallet keeps it and computes each code itself.

export const STEP_SECONDS = 30;

/** RFC 4648 base32 (upper case, padding optional) to bytes. */
export function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.toUpperCase().replace(/=+$/, "").replace(/\s+/g, "");
  const out = [];
  let bits = 0;
  let value = 0;
  for (const char of clean) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error("the secret is not base32");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** The step (counter) of a time in milliseconds. */
export function stepOf(ms) {
  return Math.floor(ms / 1000 / STEP_SECONDS);
}

/** The 6-digit code of `secret` (base32) at `step`. */
export async function codeAt(secret, step) {
  const key = await crypto.subtle.importKey(
    "raw", base32Decode(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const counter = new DataView(new ArrayBuffer(8));
  // A 64-bit big-endian counter; steps stay far below 2^53, so the split is exact.
  counter.setUint32(0, Math.floor(step / 2 ** 32));
  counter.setUint32(4, step >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, counter.buffer));
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) |
    (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 1_000_000).padStart(6, "0");
}
