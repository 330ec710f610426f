/** Deterministic bench identities shared by the orchestrator (seeding) and the workers. */
export function benchUserId(i: number): string {
  return `bu${String(i).padStart(7, '0')}`;
}

export function benchToken(nonce: string, i: number): string {
  return `bench-${nonce}-${i}`;
}

/** Users chat in pairs: 0↔1, 2↔3, … */
export function partnerOf(i: number): number {
  return i ^ 1;
}

/** Source address for connection i: a new 127.0.0.x every `perAddress` connections (ephemeral ports are ~28k per source/destination pair). */
export function localAddressFor(i: number, perAddress = 20_000): string {
  return `127.0.0.${1 + Math.floor(i / perAddress)}`;
}
