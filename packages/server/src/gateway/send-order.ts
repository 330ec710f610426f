import { MagpieError, ErrorCodes, type ErrorCode } from '@magpie/protocol';

/** How long a conversation stays held when the refused send never comes again (a client that gave up on it). */
const HOLD_MAX_MS = 60_000;

interface Hold {
  clientMsgId: string;
  code: ErrorCode;
  until: number;
  retryAt: number;
}

/**
 * Keeps a sender's pipelined sends to one conversation in the order they were written when
 * one of them is refused with a retryable error (e.g. `rate_limited`): the client wrote the
 * later ones before it learned of the refusal, so storing them would put them before the
 * refused one for good. Every other send of that conversation on the same connection is
 * refused the same way until the refused message comes again (the client resends it first),
 * or at most HOLD_MAX_MS. One per connection; frames arrive in order on a connection.
 */
export class SendOrderGuard {
  private readonly held = new Map<string, Hold>();

  constructor(private readonly now: () => number = Date.now) {}

  static lane(f: { conv?: string | undefined; to?: string | undefined }): string {
    return f.conv !== undefined ? `c:${f.conv}` : `u:${f.to ?? ''}`;
  }

  /** Before a send is handled: throws when its conversation is held behind another message. */
  check(f: { clientMsgId: string; conv?: string | undefined; to?: string | undefined }): void {
    if (this.held.size === 0) return;
    const lane = SendOrderGuard.lane(f);
    const h = this.held.get(lane);
    if (!h) return;
    const now = this.now();
    if (h.clientMsgId === f.clientMsgId || now >= h.until) {
      this.held.delete(lane);
      return;
    }
    throw new MagpieError(h.code, `held behind the refused message ${h.clientMsgId}: resend that one first`, { retryAfterMs: Math.max(1, h.retryAt - now) });
  }

  /** A send was refused: a retryable refusal holds its conversation. */
  refused(f: { clientMsgId: string; conv?: string | undefined; to?: string | undefined }, err: unknown): void {
    if (!(err instanceof MagpieError) || !ErrorCodes[err.code].retry) return;
    const lane = SendOrderGuard.lane(f);
    if (this.held.has(lane)) return;
    const now = this.now();
    this.held.set(lane, { clientMsgId: f.clientMsgId, code: err.code, until: now + HOLD_MAX_MS, retryAt: now + (err.retryAfterMs ?? 0) });
  }
}
