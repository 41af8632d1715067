import { randomBytes } from "node:crypto";

let lastMs = 0;
let seq = 0;

/**
 * A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that keeps ids made in the
 * same millisecond in order, then 62 random bits. Ids made by one process sort by creation time.
 */
export function uuidv7(): string {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    seq = randomBytes(2).readUInt16BE(0) & 0x7ff; // random start, room left to count up
  } else if (++seq > 0xfff) {
    lastMs += 1; // counter exhausted (or clock went back): borrow the next millisecond
    seq = 0;
  }
  ms = lastMs;
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (seq >> 8);
  b[7] = seq & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
