/**
 * Where the retry queue sends a delivery it could not complete live: the device went away
 * (`offline`) or never answered (`gave_up`). The offline push service implements this; the
 * default records the handoff (bounded) so it can be inspected and counted.
 */
export interface OfflineHandoff {
  handoff(ref: { userId: string; deviceId: string; inboxSeq: number }, reason: 'offline' | 'gave_up'): void;
}
