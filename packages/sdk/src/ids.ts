/** The platform's CSPRNG when it has one. */
function fillRandom(bytes: Uint8Array): Uint8Array {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return bytes;
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Random ids (deviceId): 128 bits, hex. */
export function randomId(): string {
  return hex(fillRandom(new Uint8Array(16)));
}

/**
 * clientMsgIds: 32 hex digits like randomId, of which the first 12 are the time in ms and the
 * other 20 random (80 bits). The server keeps a unique index on (sender, clientMsgId) for
 * idempotent sends; ids that grow with time land at the end of the sender's range in it (one
 * page per commit), where random ones land on a random page each (one page written per message:
 * +10–15 µs of the server's writer per message, docs/benchmarks.md). Unique as before: a
 * collision needs the same sender, millisecond and 80 random bits.
 */
export function timeOrderedId(now: number = Date.now()): string {
  const time = Math.max(0, Math.floor(now)).toString(16).padStart(12, '0').slice(-12);
  return time + hex(fillRandom(new Uint8Array(10)));
}
