/**
 * Where the retry queue sends a delivery it could not complete live: the device went away
 * (`offline`) or never answered (`gave_up`). The offline push service implements this; the
 * default records the handoff (bounded) so it can be inspected and counted.
 */
export interface OfflineHandoff {
  handoff(ref: { userId: string; deviceId: string; inboxSeq: number }, reason: 'offline' | 'gave_up'): void;
}

export class RecordingHandoff implements OfflineHandoff {
  readonly records: { userId: string; deviceId: string; inboxSeq: number; reason: string; at: number }[] = [];
  constructor(private readonly capacity = 10_000) {}
  handoff(ref: { userId: string; deviceId: string; inboxSeq: number }, reason: 'offline' | 'gave_up'): void {
    this.records.push({ ...ref, reason, at: Date.now() });
    if (this.records.length > this.capacity) this.records.shift();
  }
}
