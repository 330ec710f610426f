/** Test doubles and fixtures for the red-packet service tests. */
import assert from 'node:assert/strict';
import { MagpieError, validateMessageBody, type ConversationKind, type GrabResult, type Message, type OpenResult } from '@magpie/protocol';
import type { Principal } from '../src/services/account-service.ts';
import type { SendInput } from '../src/services/message-service.ts';
import { directConversationId } from '../src/store/store.ts';
import { RedPacketService, type MembershipSource, type MessagePoster, type RedPacketOptions } from '../src/wallet/redpacket-service.ts';
import type { WalletStore } from '../src/wallet/wallet-store.ts';

export class ManualClock {
  constructor(public t = 1_700_000_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Conversations and members in memory (what the messaging Store answers). */
export class FakeMembers implements MembershipSource {
  readonly convs = new Map<string, { kind: ConversationKind; members: Set<string> }>();
  readonly users = new Set<string>();
  group(conv: string, members: string[]): void {
    for (const m of members) this.users.add(m);
    this.convs.set(conv, { kind: 'group', members: new Set(members) });
  }
  async isMember(conv: string, userId: string): Promise<boolean> {
    if (conv.startsWith('d:')) return conv.split(':').includes(userId);
    return this.convs.get(conv)?.members.has(userId) ?? false;
  }
  async getConversation(conv: string): Promise<{ kind: ConversationKind } | null> {
    return this.convs.get(conv) ?? null;
  }
  async getUser(id: string): Promise<unknown> {
    return this.users.has(id) ? { id } : null;
  }
}

/** Records posts (idempotent per sender + clientMsgId, like the real path); can be made to fail. */
export class FakePoster implements MessagePoster {
  readonly posts: { p: Principal; input: SendInput; message: Message }[] = [];
  private readonly byKey = new Map<string, Message>();
  /** Throw this for the next N posts. */
  failNext = 0;
  failWith: () => Error = () => new MagpieError('unavailable', 'store down');
  private seq = 0;

  async send(p: Principal, input: SendInput): Promise<{ message: Message; duplicate: boolean }> {
    if (this.failNext > 0) {
      this.failNext--;
      throw this.failWith();
    }
    const body = validateMessageBody(input.kind, input.body);
    const key = `${p.userId}|${input.clientMsgId}`;
    const prior = this.byKey.get(key);
    if (prior) return { message: prior, duplicate: true };
    const conv = input.conv ?? directConversationId(p.userId, input.to!);
    const message: Message = { id: `m${++this.seq}`, conv, seq: this.seq, sender: p.userId, kind: input.kind, body, time: 0, clientMsgId: input.clientMsgId };
    this.byKey.set(key, message);
    this.posts.push({ p, input, message });
    return { message, duplicate: false };
  }

  ofKind(kind: string): Message[] {
    return this.posts.filter((x) => x.message.kind === kind).map((x) => x.message);
  }
}

export const principal = (userId: string): Principal => ({ userId, deviceId: 'dev1', platform: 'web', tokenHash: `th-${userId}`, appVersion: '1' });

export const TEST_OPTIONS: RedPacketOptions = {
  expiryMs: 24 * 3600_000,
  maxCount: 200,
  maxTotal: 2_000_000,
  grabHoldMs: 10_000,
  // Tests under a manual clock answer `busy` at once (the wait is real time); tests of the wait set it.
  grabWaitMs: 0,
  maxBalance: 10_000_000_000,
  overAdmitRatio: 0.1,
  overAdmitMin: 2,
  sweepIntervalMs: 60_000,
  postRetryAfterMs: 30_000,
  postGiveUpMs: 600_000,
  commitDelayMs: 0,
  maxBatch: 500,
};

export function makeService(wallet: WalletStore, over: Partial<RedPacketOptions> = {}, clock?: ManualClock) {
  const members = new FakeMembers();
  const poster = new FakePoster();
  const service = new RedPacketService(wallet, members, poster, { ...TEST_OPTIONS, ...over }, clock ? { now: clock.now } : {});
  return { members, poster, service };
}

/** A client that opens, retrying while all shares left are held by others ("busy"). */
export async function openUntilDecided(
  service: RedPacketService,
  userId: string,
  packetId: string,
  opts: { grabFirst?: boolean; maxWaitMs?: number } = {},
): Promise<OpenResult> {
  if (opts.grabFirst) {
    const g: GrabResult = await service.grab(userId, packetId);
    if (g.result === 'all_claimed') return { result: 'all_claimed' };
  }
  for (;;) {
    const r = await service.open(userId, packetId);
    if (r.result !== 'busy') return r;
    await new Promise((res) => setTimeout(res, Math.min(r.retryAfterMs, (opts.maxWaitMs ?? 100) * (1 + Math.random()))));
  }
}

export async function expectMagpieError(p: Promise<unknown>, code: string, reason?: string): Promise<MagpieError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MagpieError, `expected a MagpieError, got ${String(err)}`);
    assert.equal(err.code, code, `code: ${err.message}`);
    if (reason !== undefined) assert.equal((err.details as { reason?: string } | undefined)?.reason, reason);
    return err;
  }
  assert.fail(`expected ${code}${reason ? ` (${reason})` : ''}, but it succeeded`);
}
