import {
  MagpieError,
  type ConversationKind,
  type GrabResult,
  type Message,
  type OpenResult,
  type RedPacketBody,
  type RedPacketClaim,
  type RedPacketSplit,
  type RedPacketStatusBody,
  type RedPacketView,
} from '@magpie/protocol';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { GroupCommitter } from '../services/group-commit.ts';
import type { Principal } from '../services/account-service.ts';
import type { SendInput } from '../services/message-service.ts';
import { directConversationId } from '../store/store.ts';
import { timeId } from '../util/ids.ts';
import { GrabFilter } from './grab-filter.ts';
import { bestLuckIndex } from './split.ts';
import type { OpenOutcome, OpenRequest, PacketRecord, WalletStore } from './wallet-store.ts';

/** What the red-packet service needs from the messaging store (the `Store` satisfies it). */
export interface MembershipSource {
  isMember(conv: string, userId: string): Promise<boolean>;
  getConversation(conv: string): Promise<{ kind: ConversationKind } | null>;
  getUser(id: string): Promise<unknown>;
}

/** Posts messages into conversations (the `MessagingService` satisfies it). */
export interface MessagePoster {
  send(p: Principal, input: SendInput): Promise<{ message: Message; duplicate: boolean }>;
  /** Throws the error a post to this target would get now (muted, not a member, blocked, …). */
  check?(p: Principal, target: { to: string } | { conv: string }): Promise<void>;
}

export interface RedPacketOptions {
  /** Time from sending to expiry (refund of what is left). */
  expiryMs: number;
  maxCount: number;
  /** Largest total of one packet, in fen. */
  maxTotal: number;
  /** How long an admitted grab holds its place. */
  grabHoldMs: number;
  /**
   * A grab or open that finds every place held waits up to this long for the holders to
   * settle (claim, give up, or the packet ends) before it answers `busy`; 0 answers at once.
   */
  grabWaitMs: number;
  overAdmitRatio: number;
  overAdmitMin: number;
  sweepIntervalMs: number;
  /** An announcement that failed to post is retried by the sweeper after this long… */
  postRetryAfterMs: number;
  /** …and the packet is refunded when it still has not been posted after this long. */
  postGiveUpMs: number;
  commitDelayMs: number;
  maxBatch: number;
  /** A claim may not take the claimer's balance past this (fen). */
  maxBalance: number;
}

export interface SendPacketInput {
  clientMsgId: string;
  to?: string;
  conv?: string;
  split: RedPacketSplit;
  /** Random split: the total in fen. */
  total?: number;
  /** Fixed split: the amount of each share in fen. */
  amount?: number;
  count: number;
  greeting?: string;
  exclusiveTo?: string | null;
}

export interface PacketDetails {
  packet: RedPacketView;
  claims: RedPacketClaim[];
  /** Largest claim, ties to the earliest; only once every share is claimed. */
  bestLuck: RedPacketClaim | null;
}

interface PacketMeta {
  conv: string;
  sender: string;
  exclusiveTo: string | null;
  direct: boolean;
}

const ATTEMPTS = [0, 50, 250];

/**
 * Red packets: send (debit → escrow in one transaction, then the `redpacket` message), grab
 * (in-memory filter, see grab-filter.ts), open (one group-committed transaction: claim,
 * compare-and-set on the packet, escrow → claimer), expiry with refund and the status
 * message, and the claim list.
 */
export class RedPacketService {
  readonly filter: GrabFilter;
  private readonly committer: GroupCommitter<OpenRequest, OpenOutcome>;
  /** Status-message marks, group-committed like opens (one write for many packets). */
  private readonly statusMarks: GroupCommitter<string, void>;
  private readonly meta = new Map<string, PacketMeta>();
  private readonly loading = new Map<string, Promise<PacketMeta | null>>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<unknown> | null = null;
  private readonly counters: { grabs: Counter<'result'>; opens: Counter<'result'>; sends: Counter<'result'> } | null;

  constructor(
    private readonly wallet: WalletStore,
    private readonly members: MembershipSource,
    private readonly poster: MessagePoster,
    private readonly opts: RedPacketOptions,
    private readonly extra: { log?: Logger; now?: () => number; registry?: Registry } = {},
  ) {
    this.filter = new GrabFilter({ holdMs: opts.grabHoldMs, overAdmitRatio: opts.overAdmitRatio, overAdmitMin: opts.overAdmitMin, maxPackets: 10_000 });
    // sameTurn: the opens whose membership reads came back together commit at once, so an open
    // is answered in the event-loop turn its reads ended in (fewer requests alive across turns:
    // less for the garbage collector to copy).
    this.committer = new GroupCommitter((batch) => this.wallet.open(batch), { delayMs: opts.commitDelayMs, maxBatch: opts.maxBatch, sameTurn: true });
    this.statusMarks = new GroupCommitter<string, void>(async (ids: string[]) => {
      await this.wallet.markStatusPosted(ids);
      return ids.map(() => undefined);
    }, { delayMs: opts.commitDelayMs, maxBatch: opts.maxBatch });
    const registers = extra.registry ? [extra.registry] : [];
    this.counters = extra.registry
      ? {
          grabs: new Counter({ name: 'magpie_redpacket_grabs_total', help: 'Red-packet grabs by result', labelNames: ['result'] as const, registers }),
          opens: new Counter({ name: 'magpie_redpacket_opens_total', help: 'Red-packet opens by result', labelNames: ['result'] as const, registers }),
          sends: new Counter({ name: 'magpie_redpacket_sends_total', help: 'Red packets sent by result', labelNames: ['result'] as const, registers }),
        }
      : null;
  }

  private now(): number {
    return (this.extra.now ?? Date.now)();
  }

  // ---------------------------------------------------------------- send

  /**
   * `authorize` (the payment PIN) runs after every other check and right before the debit, so
   * a request refused for another reason costs no PIN try.
   */
  async send(p: Principal, input: SendPacketInput, opts: { authorize?: () => Promise<void> } = {}): Promise<{ packet: RedPacketView; message: Message | null; duplicate: boolean }> {
    const { total, count } = this.validateAmounts(input);
    const greeting = input.greeting ?? '';
    if (greeting.length > 100) throw new MagpieError('invalid', 'greeting is longer than 100 characters');
    const exclusiveTo = input.exclusiveTo ?? null;
    let conv: string;
    let direct: boolean;
    if (input.to !== undefined) {
      if (input.to === p.userId) throw new MagpieError('invalid', 'cannot send a red packet to yourself');
      if (!(await this.members.getUser(input.to))) throw new MagpieError('not_found', `no such user: ${input.to}`);
      conv = directConversationId(p.userId, input.to);
      direct = true;
      if (exclusiveTo !== null && exclusiveTo !== input.to) throw new MagpieError('invalid', 'in a direct conversation only the peer can receive');
    } else if (input.conv !== undefined) {
      conv = input.conv;
      const c = await this.members.getConversation(conv);
      if (!c) throw new MagpieError('not_found', `no such conversation: ${conv}`);
      if (!(await this.members.isMember(conv, p.userId))) throw new MagpieError('forbidden', 'not a member of this conversation', { details: { reason: 'not_member' } });
      direct = c.kind === 'direct';
      if (exclusiveTo !== null) {
        if (exclusiveTo === p.userId) throw new MagpieError('invalid', 'an exclusive red packet cannot be for its sender');
        if (!(await this.members.isMember(conv, exclusiveTo))) throw new MagpieError('invalid', 'the exclusive recipient is not a member of this conversation');
      }
    } else {
      throw new MagpieError('invalid', 'exactly one of `to` and `conv` is required');
    }
    if ((direct || exclusiveTo !== null) && count !== 1) throw new MagpieError('invalid', 'a red packet for one person has count 1');
    // Every precondition of the announcement before any money moves: a muted member, a
    // dismissed group, mute-all, a block or the stranger policy refuses here, not after the debit.
    await this.poster.check?.(p, input.to !== undefined ? { to: input.to } : { conv });
    await opts.authorize?.();

    const now = this.now();
    const outcome = await this.wallet.createPacket({
      id: timeId('rp'),
      clientId: input.clientMsgId,
      conv,
      sender: p.userId,
      split: input.split,
      total,
      count,
      greeting,
      exclusiveTo,
      createdAt: now,
      expiresAt: now + this.opts.expiryMs,
    });
    if (!outcome.ok) {
      this.counters?.sends.inc({ result: 'insufficient_balance' });
      throw new MagpieError('forbidden', 'insufficient balance', { details: { reason: 'insufficient_balance' } });
    }
    const packet = outcome.packet;
    if (
      outcome.duplicate &&
      (packet.conv !== conv || packet.split !== input.split || packet.total !== total || packet.count !== count || packet.greeting !== greeting || packet.exclusiveTo !== exclusiveTo)
    ) {
      throw new MagpieError('conflict', 'clientMsgId was used for a different red packet', { details: { reason: 'idempotency_conflict' } });
    }
    if (packet.status !== 'active' && packet.messageId === null) {
      // A retry of a send whose announcement failed for good: the money went back already.
      throw new MagpieError('forbidden', 'the red packet could not be posted and was refunded', { details: { reason: 'refunded' } });
    }
    const message = await this.announce(p, packet);
    this.counters?.sends.inc({ result: outcome.duplicate ? 'duplicate' : 'ok' });
    const fresh = (await this.wallet.getPacket(packet.id)) ?? packet;
    return { packet: view(fresh), message, duplicate: outcome.duplicate };
  }

  private validateAmounts(input: SendPacketInput): { total: number; count: number } {
    const count = input.count;
    if (!Number.isSafeInteger(count) || count < 1) throw new MagpieError('invalid', 'count must be a positive integer');
    if (count > this.opts.maxCount) throw new MagpieError('invalid', `count above the limit of ${this.opts.maxCount}`, { details: { reason: 'count_above_limit', max: this.opts.maxCount } });
    let total: number;
    if (input.split === 'fixed') {
      if (input.total !== undefined) throw new MagpieError('invalid', 'a fixed split takes `amount` per share, not `total`');
      const amount = input.amount;
      if (amount === undefined || !Number.isSafeInteger(amount) || amount < 1) throw new MagpieError('invalid', 'amount must be a positive integer of fen');
      total = amount * count;
    } else {
      if (input.amount !== undefined) throw new MagpieError('invalid', 'a random split takes `total`, not `amount`');
      const t = input.total;
      if (t === undefined || !Number.isSafeInteger(t) || t < 1) throw new MagpieError('invalid', 'total must be a positive integer of fen');
      if (t < count) throw new MagpieError('invalid', `total below ${count} × 1 fen`, { details: { reason: 'total_below_count' } });
      total = t;
    }
    if (!Number.isSafeInteger(total) || total > this.opts.maxTotal) throw new MagpieError('invalid', `total above the limit of ${this.opts.maxTotal} fen`, { details: { reason: 'total_above_limit', max: this.opts.maxTotal } });
    return { total, count };
  }

  /**
   * Post the `redpacket` message (idempotent: clientMsgId `rp:<packetId>`). Transient failures
   * are retried here and later by the sweeper; a permanent refusal (the sender left the
   * group, say) refunds the packet at once. Money is never stranded by a failed post.
   */
  private async announce(p: Principal, packet: PacketRecord): Promise<Message | null> {
    const body: RedPacketBody = {
      packetId: packet.id,
      split: packet.split,
      count: packet.count,
      total: packet.total,
      greeting: packet.greeting,
      exclusiveTo: packet.exclusiveTo,
      expiresAt: packet.expiresAt,
    };
    let lastErr: unknown;
    for (const delay of ATTEMPTS) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      try {
        const { message } = await this.poster.send(p, { clientMsgId: `rp:${packet.id}`, ...target(packet), kind: 'redpacket', body });
        if (packet.messageId === null) await this.wallet.markPosted(packet.id, message.id);
        return message;
      } catch (err) {
        lastErr = err;
        if (permanent(err)) {
          const refund = await this.wallet.refundUnposted(packet.id, this.now());
          if (refund) await this.wallet.markStatusPosted([packet.id]);
          this.filter.end(packet.id, 'expired');
          this.extra.log?.warn({ packet: packet.id, err }, 'red packet could not be posted; refunded');
          throw err;
        }
      }
    }
    this.extra.log?.error({ packet: packet.id, err: lastErr }, 'red packet not posted yet; the sweeper retries or refunds it');
    throw new MagpieError('unavailable', 'the red packet is paid but not posted yet; retry the same request (it will be posted or refunded)');
  }

  // ---------------------------------------------------------------- grab / open

  private async load(packetId: string): Promise<PacketMeta | null> {
    const known = this.meta.get(packetId);
    if (known && this.filter.has(packetId)) return known;
    let pending = this.loading.get(packetId);
    if (!pending) {
      pending = (async () => {
        const p = await this.wallet.getPacket(packetId);
        if (!p) return null;
        const claims = await this.wallet.claims(packetId);
        const ended = p.status === 'active' ? null : p.status;
        this.filter.load(packetId, { remaining: p.remainingCount, expiresAt: p.expiresAt, ended }, claims.map((c) => [c.user, c.amount] as [string, number]));
        const m: PacketMeta = { conv: p.conv, sender: p.sender, exclusiveTo: p.exclusiveTo, direct: p.conv.startsWith('d:') };
        if (this.meta.size >= 10_000) this.meta.delete(this.meta.keys().next().value!);
        this.meta.set(packetId, m);
        return m;
      })().finally(() => this.loading.delete(packetId));
      this.loading.set(packetId, pending);
    }
    return pending;
  }

  /** The packet's meta when it and its filter state are in memory (no promise on the hot path). */
  private cached(packetId: string): PacketMeta | undefined {
    const known = this.meta.get(packetId);
    return known && this.filter.has(packetId) ? known : undefined;
  }

  /** Members only; an exclusive packet opens for its recipient only; a 1:1 packet not for its sender. */
  private async access(packetId: string, userId: string): Promise<PacketMeta> {
    const m = this.cached(packetId) ?? (await this.load(packetId));
    if (!m) throw new MagpieError('not_found', 'no such red packet');
    if (!(await this.members.isMember(m.conv, userId))) throw notMember();
    refuseAccess(m, userId);
    // The filter may have evicted the packet while we awaited membership: load it again.
    if (!this.filter.has(packetId)) await this.load(packetId);
    return m;
  }

  async grab(userId: string, packetId: string): Promise<GrabResult> {
    await this.access(packetId, userId);
    const answer = await this.admit(userId, packetId);
    this.counters?.grabs.inc({ result: answer.result });
    return answer;
  }

  /**
   * The grab filter's answer; `busy` only after waiting up to `grabWaitMs` for a place to free
   * up or the packet to end, so a latecomer learns `all_claimed` as soon as the holders'
   * opens settle instead of being sent away for a hold period. `first`: the filter's answer
   * already taken for this grab (at `since`, performance.now()).
   */
  private async admit(userId: string, packetId: string, first?: GrabResult, since = performance.now()): Promise<GrabResult> {
    const deadline = since + this.opts.grabWaitMs;
    let answer = first;
    for (;;) {
      if (answer === undefined) {
        if (!this.filter.has(packetId)) await this.load(packetId);
        answer = this.filter.grab(packetId, userId, this.now());
      }
      const left = deadline - performance.now();
      if (answer.result !== 'busy' || left <= 0) return answer;
      // Wake at a change of the packet, or when the oldest hold lapses, whichever is first.
      const now = this.now();
      const lapse = this.filter.firstHoldExpiry(packetId, now);
      await this.filter.changed(packetId, Math.max(1, Math.min(left, lapse === null ? left : lapse - now + 1)));
      answer = undefined;
    }
  }

  /**
   * Open: passes the grab filter first (an open without a live hold grabs implicitly), then
   * one transaction records the claim and credits the claimer. Refusals throw: a second
   * open `conflict` (reason already_opened), after expiry `forbidden` (reason expired).
   *
   * The same steps as `access` and `admit`, written out so that an open of a packet in memory
   * awaits only its membership read and its transaction (each nested async call is another
   * promise and frame per open: garbage at thousands of opens a second).
   */
  async open(userId: string, packetId: string): Promise<OpenResult> {
    const m = this.cached(packetId) ?? (await this.load(packetId));
    if (!m) throw new MagpieError('not_found', 'no such red packet');
    if (!(await this.members.isMember(m.conv, userId))) throw notMember();
    refuseAccess(m, userId);
    const since = performance.now();
    let gate: GrabResult;
    if (this.filter.has(packetId)) {
      gate = this.filter.grab(packetId, userId, this.now());
      if (gate.result === 'busy') gate = await this.admit(userId, packetId, gate, since);
    } else {
      // Evicted while we awaited membership: load it again (admit does).
      gate = await this.admit(userId, packetId, undefined, since);
    }
    const result = gate.result === 'admitted' ? await this.openAdmitted(userId, packetId) : refusedAtGrab(gate);
    this.counters?.opens.inc({ result: result.result });
    return result;
  }

  /** The open of an admitted grabber: one claim in the next group commit. */
  private async openAdmitted(userId: string, packetId: string): Promise<OpenResult> {
    let out: OpenOutcome;
    try {
      out = await this.committer.submit({ packetId, userId, now: this.now(), maxBalance: this.opts.maxBalance });
    } catch (err) {
      this.filter.release(packetId, userId);
      throw err;
    }
    if (out.ok) {
      this.filter.claimed(packetId, userId, out.claim.amount, out.remainingCount);
      if (out.finished) this.track(this.announceEnd(packetId).catch((err: unknown) => this.extra.log?.warn({ err, packet: packetId }, 'status message failed; the sweeper retries')));
      return { result: 'claimed', amount: out.claim.amount, seq: out.claim.seq, remainingCount: out.remainingCount };
    }
    this.filter.release(packetId, userId);
    switch (out.error) {
      case 'already_opened':
        throw alreadyOpened(out.claim.amount);
      case 'all_claimed':
        this.filter.end(packetId, 'finished');
        return { result: 'all_claimed' };
      case 'expired':
        this.filter.end(packetId, 'expired');
        throw expired();
      case 'not_found':
        throw new MagpieError('not_found', 'no such red packet');
      case 'balance_limit':
        throw new MagpieError('forbidden', `your balance would pass the limit of ${this.opts.maxBalance} fen`, { details: { reason: 'balance_limit', max: this.opts.maxBalance } });
    }
  }

  /** The packet, its claim list and best luck, for members of its conversation (and its sender). */
  async details(userId: string, packetId: string): Promise<PacketDetails> {
    const p = await this.wallet.getPacket(packetId);
    if (!p) throw new MagpieError('not_found', 'no such red packet');
    if (p.sender !== userId && !(await this.members.isMember(p.conv, userId))) throw new MagpieError('forbidden', 'not a member of the conversation of this red packet');
    const claims = await this.wallet.claims(packetId);
    const best = p.status === 'finished' ? claims[bestLuckIndex(claims.map((c) => c.amount))] ?? null : null;
    return { packet: view(p), claims, bestLuck: best };
  }

  // ---------------------------------------------------------------- expiry and status

  /** Post the one `redpacket.status` message of an ended packet (idempotent: clientMsgId `rps:<id>`). */
  private async announceEnd(packetId: string): Promise<void> {
    const p = await this.wallet.getPacket(packetId);
    if (!p || p.status === 'active' || p.statusPosted) return;
    if (p.messageId === null) {
      // Never announced (refunded because posting failed): nothing to update in the chat.
      await this.statusMarks.submit(p.id);
      return;
    }
    const claims = await this.wallet.claims(p.id);
    const best = p.status === 'finished' ? claims[bestLuckIndex(claims.map((c) => c.amount))] : undefined;
    const body: RedPacketStatusBody = {
      packetId: p.id,
      status: p.status,
      claimedCount: claims.length,
      claimedAmount: claims.reduce((s, c) => s + c.amount, 0),
      refunded: p.refunded,
      bestLuck: best ? { user: best.user, amount: best.amount } : null,
    };
    try {
      await this.poster.send(serverPrincipal(p.sender), { clientMsgId: `rps:${p.id}`, ...target(p), kind: 'redpacket.status', body });
    } catch (err) {
      if (!permanent(err)) throw err;
      // The sender left the conversation, say: the status stays readable through the API.
      this.extra.log?.info({ packet: p.id, err }, 'status message refused; not retried');
    }
    await this.statusMarks.submit(p.id);
  }

  /**
   * One sweep: refund expired packets, retry or refund unposted ones, post missing status
   * messages. Safe on every node at once (all transitions are compare-and-set).
   */
  async sweep(): Promise<{ expired: number; refunded: number; posted: number; announced: number }> {
    if (this.sweeping) await this.sweeping.catch(() => {});
    const run = this.sweepOnce();
    this.sweeping = run;
    try {
      return await run;
    } finally {
      this.sweeping = null;
    }
  }

  private async sweepOnce(): Promise<{ expired: number; refunded: number; posted: number; announced: number }> {
    const stats = { expired: 0, refunded: 0, posted: 0, announced: 0 };
    const limit = 200;
    for (let round = 0; round < 50; round++) {
      const now = this.now();
      const due = await this.wallet.duePackets(now, now - this.opts.postRetryAfterMs, limit);
      let progressed = 0;
      for (const p of due) {
        try {
          if (p.status === 'active' && p.messageId === null && p.createdAt < now - this.opts.postRetryAfterMs) {
            if (now - p.createdAt >= this.opts.postGiveUpMs || now >= p.expiresAt) {
              const r = await this.wallet.refundUnposted(p.id, now);
              if (r) {
                stats.refunded += r.refunded;
                await this.wallet.markStatusPosted([p.id]);
                this.filter.end(p.id, 'expired');
                progressed++;
              }
            } else {
              await this.announce(serverPrincipal(p.sender), p).then(() => {
                stats.posted++;
                progressed++;
              });
            }
            continue;
          }
          if (p.status === 'active' && p.expiresAt <= now) {
            const r = await this.wallet.expire(p.id, now);
            this.filter.end(p.id, 'expired');
            if (r) {
              stats.expired++;
              stats.refunded += r.refunded;
              progressed++;
            }
          }
          const fresh = await this.wallet.getPacket(p.id);
          if (fresh && fresh.status !== 'active' && !fresh.statusPosted) {
            await this.announceEnd(p.id);
            stats.announced++;
            progressed++;
          }
        } catch (err) {
          this.extra.log?.warn({ err, packet: p.id }, 'sweep step failed; retried next sweep');
        }
      }
      if (due.length < limit || progressed === 0) break;
    }
    return stats;
  }

  /** Background work (status messages) that `stop` waits for. */
  private readonly inflight = new Set<Promise<unknown>>();
  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      void this.sweep().catch((err: unknown) => this.extra.log?.error({ err }, 'red-packet sweep failed'));
    }, this.opts.sweepIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.sweeping) await this.sweeping.catch(() => {});
    await Promise.allSettled([...this.inflight]);
  }
}

function notMember(): MagpieError {
  return new MagpieError('forbidden', 'not a member of the conversation of this red packet', { details: { reason: 'not_member' } });
}

/** Throws when a member may not open this packet: an exclusive packet is its recipient's; a 1:1 packet is not its sender's. */
function refuseAccess(m: PacketMeta, userId: string): void {
  if (m.exclusiveTo !== null && m.exclusiveTo !== userId) throw new MagpieError('forbidden', 'this red packet is for someone else', { details: { reason: 'exclusive' } });
  if (m.direct && m.sender === userId) throw new MagpieError('forbidden', 'the sender cannot open a 1:1 red packet', { details: { reason: 'own_packet' } });
}

/** The answer to an open that the grab filter did not admit. */
function refusedAtGrab(gate: Exclude<GrabResult, { result: 'admitted' }>): OpenResult {
  switch (gate.result) {
    case 'opened':
      throw alreadyOpened(gate.amount);
    case 'expired':
      throw expired();
    case 'all_claimed':
      return { result: 'all_claimed' };
    case 'busy':
      return { result: 'busy', retryAfterMs: gate.retryAfterMs };
  }
}

function alreadyOpened(amount: number): MagpieError {
  return new MagpieError('conflict', 'you have opened this red packet already', { details: { reason: 'already_opened', amount } });
}

function expired(): MagpieError {
  return new MagpieError('forbidden', 'the red packet has expired', { details: { reason: 'expired' } });
}

/** Errors that will not go away by retrying the same post (everything but overload and crashes). */
function permanent(err: unknown): boolean {
  return err instanceof MagpieError && !['unavailable', 'internal', 'rate_limited'].includes(err.code);
}

/** Where to post: a direct conversation is addressed by the peer (it may not exist yet). */
function target(p: Pick<PacketRecord, 'conv' | 'sender'>): { to: string } | { conv: string } {
  if (p.conv.startsWith('d:')) {
    const [, a, b] = p.conv.split(':');
    return { to: a === p.sender ? b! : a! };
  }
  return { conv: p.conv };
}

/** The sender, as the server posting on their behalf (no device to skip in fan-out). */
function serverPrincipal(userId: string): Principal {
  return { userId, deviceId: 'server', platform: 'other', tokenHash: '', appVersion: '' };
}

export function view(p: PacketRecord): RedPacketView {
  return {
    id: p.id,
    conv: p.conv,
    sender: p.sender,
    split: p.split,
    total: p.total,
    count: p.count,
    greeting: p.greeting,
    exclusiveTo: p.exclusiveTo,
    createdAt: p.createdAt,
    expiresAt: p.expiresAt,
    status: p.status,
    remainingCount: p.remainingCount,
    remainingAmount: p.remainingAmount,
    refunded: p.refunded,
    messageId: p.messageId,
  };
}
