/**
 * Where the retry queue sends a delivery it could not complete live: the device went away
 * (`offline`) or never answered (`gave_up`). Offline push (PushService) implements it;
 * app.ts builds push before the retry queue.
 */
export interface OfflineHandoff {
  handoff(ref: { userId: string; deviceId: string; inboxSeq: number }, reason: 'offline' | 'gave_up'): void;
}
