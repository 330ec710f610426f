/**
 * Wallet, payment PIN and red packets in the SDK: `WalletApi` (REST calls with typed
 * refusals) and `RedPacketWatch` (live events for packets in view). Amounts are integers in
 * fen; see money.ts for yuan text. Only types come from @magpie/protocol.
 */
import type { LedgerEntryView as LedgerEntry, Message, PaymentRequestView, PinStatus, RedPacketBody, RedPacketClaim, RedPacketStatusBody, RedPacketView } from '@magpie/protocol';
import { TypedEmitter } from './emitter.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import type { LocalMessage } from './history.ts';
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

export type { LedgerEntryView as LedgerEntry, PaymentRequestView, PinStatus, RedPacketBody, RedPacketClaim, RedPacketStatusBody, RedPacketView } from '@magpie/protocol';

/**
 * Why the server refused a wallet or red-packet call. Every refusal the issue names has its
 * own value: `insufficient_balance`, `muted`, `expired`, `all_claimed`, `not_member`,
 * `pin_locked`; the rest are listed in docs/protocol.md.
 */
export type WalletRefusal =
  | 'insufficient_balance'
  | 'muted'
  | 'expired'
  | 'all_claimed'
  | 'not_member'
  | 'already_opened'
  | 'exclusive'
  | 'own_packet'
  | 'pin_locked'
  | 'pin_wrong'
  | 'pin_required'
  | 'pin_not_set'
  | 'pin_already_set'
  | 'pin_format'
  | 'bad_password'
  | 'balance_limit'
  | 'amount_above_limit'
  | 'count_above_limit'
  | 'total_above_limit'
  | 'total_below_count'
  | 'refunded'
  | 'idempotency_conflict'
  | 'not_found'
  | 'invalid'
  | 'other';

const REASONS: ReadonlySet<string> = new Set([
  'insufficient_balance',
  'expired',
  'not_member',
  'already_opened',
  'exclusive',
  'own_packet',
  'pin_locked',
  'pin_wrong',
  'pin_required',
  'pin_not_set',
  'pin_already_set',
  'pin_format',
  'balance_limit',
  'amount_above_limit',
  'count_above_limit',
  'total_above_limit',
  'total_below_count',
  'refunded',
  'idempotency_conflict',
]);

/** A refused wallet or red-packet call: `reason` says why; `code`, `status`, `details` are the server's. */
export class WalletError extends MagpieClientError {
  readonly reason: WalletRefusal;
  /** pin_wrong: tries left before the lock. */
  readonly triesLeft?: number;
  /** pin_locked: when the lock ends (ms since epoch). */
  readonly lockedUntil?: number;
  /** already_opened: the amount this user got. */
  readonly amount?: number;

  constructor(reason: WalletRefusal, from: MagpieClientError) {
    const extra: { details?: unknown; retryAfterMs?: number; status?: number; cause: unknown } = { cause: from };
    if (from.details !== undefined) extra.details = from.details;
    if (from.retryAfterMs !== undefined) extra.retryAfterMs = from.retryAfterMs;
    if (from.status !== undefined) extra.status = from.status;
    super(from.code, from.message, extra);
    this.name = 'WalletError';
    this.reason = reason;
    const d = (from.details ?? {}) as { triesLeft?: unknown; lockedUntil?: unknown; amount?: unknown };
    if (typeof d.triesLeft === 'number') this.triesLeft = d.triesLeft;
    if (typeof d.lockedUntil === 'number') this.lockedUntil = d.lockedUntil;
    if (typeof d.amount === 'number') this.amount = d.amount;
  }
}

/** The refusal of an error from the server, by its code and `details.reason`. */
export function walletRefusalOf(err: MagpieClientError): WalletRefusal {
  const reason = (err.details as { reason?: unknown } | undefined)?.reason;
  if (typeof reason === 'string' && REASONS.has(reason)) return reason as WalletRefusal;
  switch (err.code) {
    case 'muted':
      return 'muted';
    case 'bad_credentials':
      return 'bad_password';
    case 'not_found':
      return 'not_found';
    case 'invalid':
      return 'invalid';
    case 'forbidden':
      return /not a member/.test(err.message) ? 'not_member' : 'other';
    default:
      return 'other';
  }
}

/** Server errors become WalletError; the SDK's own (network, timeout, …) stay MagpieClientError. */
function typed(err: unknown): never {
  const e = toClientError(err);
  if (e.fromServer && !e.retryable) throw new WalletError(walletRefusalOf(e), e);
  throw e;
}

export interface SendRedPacketInput {
  /** A group conversation id… */
  conv?: string;
  /** …or a user id (1:1: one share). */
  to?: string;
  /** `random`: `amount` is the total, split at random; `equal`: `amount` is each share. */
  split: 'random' | 'equal';
  /** fen */
  amount: number;
  count: number;
  greeting?: string;
  /** The 6-digit payment PIN (needed unless the server turned PINs off). */
  pin?: string;
  /** Idempotency key: retry with the same one after a network failure. Default: a new one. */
  clientMsgId?: string;
  /** Only this member may open it (count 1). */
  exclusiveTo?: string;
}

export interface OpenedPacket {
  amount: number;
  /** 1 for the first claim, 2 for the second, … */
  seq: number;
  remainingCount: number;
}

export interface PacketDetails {
  packet: RedPacketView;
  claims: RedPacketClaim[];
  /** Largest claim, once every share is claimed. */
  bestLuck: RedPacketClaim | null;
}

export interface StatementPage {
  entries: LedgerEntry[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: number | null;
}

export interface PaymentResult {
  payment: PaymentRequestView;
  balance: number;
  duplicate: boolean;
}


const seg = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let idCounter = 0;
const newId = (): string => `w${Date.now().toString(36)}${(idCounter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/**
 * The wallet REST API. Every refusal is a `WalletError` with a `reason`; network failures
 * stay `MagpieClientError` (retry the same call: sends, top-ups and withdrawals are
 * idempotent per their client id).
 */
export class WalletApi {
  private readonly http: AuthedRest;

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  private async req<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.http.req<T>(method, path, body);
    } catch (err) {
      return typed(err);
    }
  }

  /** Own balance in fen. */
  async balance(): Promise<number> {
    return (await this.req<{ balance: number }>('GET', '/api/wallet')).balance;
  }

  /** Own ledger entries, newest first; page with `before` = the previous page's `next`. */
  async statement(q: { before?: number; limit?: number } = {}): Promise<StatementPage> {
    const limit = q.limit ?? 50;
    const p = new URLSearchParams({ limit: String(limit) });
    if (q.before !== undefined) p.set('before', String(q.before));
    const { entries } = await this.req<{ entries: LedgerEntry[] }>('GET', `/api/wallet/entries?${p}`);
    return { entries, next: entries.length === limit ? entries[entries.length - 1]!.id : null };
  }

  /** Own top-ups and withdrawals, newest first. */
  async payments(q: { before?: number; limit?: number } = {}): Promise<PaymentRequestView[]> {
    const p = new URLSearchParams();
    if (q.before !== undefined) p.set('before', String(q.before));
    if (q.limit !== undefined) p.set('limit', String(q.limit));
    const s = p.toString();
    return (await this.req<{ payments: PaymentRequestView[] }>('GET', `/api/wallet/payments${s ? `?${s}` : ''}`)).payments;
  }

  pinStatus(): Promise<PinStatus> {
    return this.req('GET', '/api/wallet/pin');
  }

  /** Set the payment PIN (six digits) once. */
  setPin(pin: string): Promise<PinStatus> {
    return this.req('PUT', '/api/wallet/pin', { pin });
  }

  /** Replace the PIN with the account password (lifts a lock). A wrong password: reason `bad_password`. */
  resetPin(password: string, pin: string): Promise<PinStatus> {
    return this.req('POST', '/api/wallet/pin/reset', { password, pin });
  }

  /** Top up through the server's payment provider (the sandbox by default). */
  topUp(amount: number, clientId: string = newId()): Promise<PaymentResult> {
    return this.req('POST', '/api/wallet/topups', { clientId, amount });
  }

  /** Withdraw through the payment provider (PIN). `payment.status`: paid, pending or reversed. */
  withdraw(amount: number, pin: string | undefined, clientId: string = newId()): Promise<PaymentResult> {
    return this.req('POST', '/api/wallet/withdrawals', pin === undefined ? { clientId, amount } : { clientId, amount, pin });
  }

  /** Send a red packet into a group (random or equal split) or to one user (one share). */
  async sendRedPacket(input: SendRedPacketInput): Promise<{ packet: RedPacketView; message: Message | null; duplicate: boolean }> {
    const body: Record<string, unknown> = {
      clientMsgId: input.clientMsgId ?? newId(),
      split: input.split === 'equal' ? 'fixed' : 'random',
      count: input.count,
      [input.split === 'equal' ? 'amount' : 'total']: input.amount,
    };
    if (input.conv !== undefined) body.conv = input.conv;
    if (input.to !== undefined) body.to = input.to;
    if (input.greeting) body.greeting = input.greeting;
    if (input.pin !== undefined) body.pin = input.pin;
    if (input.exclusiveTo !== undefined) body.exclusiveTo = input.exclusiveTo;
    return this.req('POST', '/api/redpackets', body);
  }

  /**
   * Open a packet: the amount credited. Refusals: `all_claimed`, `expired`, `already_opened`
   * (with `amount`), `not_member`, `exclusive`, `own_packet`, `balance_limit`. While every share
   * left is held by earlier openers the call waits and retries (up to `maxWaitMs`).
   */
  async openRedPacket(packetId: string, opts: { maxWaitMs?: number } = {}): Promise<OpenedPacket> {
    const end = Date.now() + (opts.maxWaitMs ?? 10_000);
    for (;;) {
      const r = await this.req<{ result: 'claimed'; amount: number; seq: number; remainingCount: number } | { result: 'all_claimed' } | { result: 'busy'; retryAfterMs: number }>(
        'POST',
        `/api/redpackets/${seg(packetId)}/open`,
      );
      if (r.result === 'claimed') return { amount: r.amount, seq: r.seq, remainingCount: r.remainingCount };
      if (r.result === 'all_claimed') {
        throw new WalletError('all_claimed', new MagpieClientError('conflict', 'every share of this red packet has been claimed', { details: { reason: 'all_claimed' }, status: 200 }));
      }
      if (Date.now() + r.retryAfterMs > end) throw new MagpieClientError('timeout', 'the red packet stayed busy; try again');
      await sleep(r.retryAfterMs);
    }
  }

  /** A packet with every claim (amount, time) and best luck once it is finished (members of its conversation). */
  redPacket(packetId: string): Promise<PacketDetails> {
    return this.req('GET', `/api/redpackets/${seg(packetId)}`);
  }
}

// ---------------------------------------------------------------- live events

export interface RedPacketEvents {
  /** A `redpacket` message arrived or was loaded. */
  packet: { packetId: string; conv: string; sender: string; body: RedPacketBody; message: LocalMessage };
  /** Someone opened a packet this user sent (the sender's devices only). */
  claimed: { packetId: string; conv: string; user: string; amount: number; remainingCount: number };
  /** A packet ended: all claimed (`finished`) or `expired` with the rest refunded. */
  ended: { packetId: string; conv: string; body: RedPacketStatusBody; message: LocalMessage };
  /** Fresh details of a watched packet (after any of the above, or `refresh`). */
  details: PacketDetails;
  error: MagpieClientError;
}

/** What RedPacketWatch listens to (a MagpieClient). */
export interface RedPacketSource {
  on(event: 'message', fn: (m: LocalMessage) => void): () => void;
  on(event: 'frame', fn: (f: { type: string; [key: string]: unknown }) => void): () => void;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/**
 * Live red-packet events from a client's messages and frames, and the details of the packets
 * in view (`watch`/`unwatch`): a watched packet is re-read after each event about it, so a
 * packet on screen shows every claim as it happens.
 */
export class RedPacketWatch extends TypedEmitter<RedPacketEvents> {
  private readonly watched = new Map<string, number>();
  private readonly latest = new Map<string, PacketDetails>();
  private readonly offs: (() => void)[];

  constructor(
    private readonly api: WalletApi,
    source: RedPacketSource,
  ) {
    super();
    this.offs = [source.on('message', (m) => this.onMessage(m)), source.on('frame', (f) => this.onFrame(f))];
  }

  /** The last details read for a packet. */
  details(packetId: string): PacketDetails | undefined {
    return this.latest.get(packetId);
  }

  /** Keep this packet's details fresh while it is in view (counted: call `unwatch` as often). */
  watch(packetId: string): void {
    this.watched.set(packetId, (this.watched.get(packetId) ?? 0) + 1);
    if (!this.latest.has(packetId)) void this.refresh(packetId);
  }

  unwatch(packetId: string): void {
    const n = (this.watched.get(packetId) ?? 0) - 1;
    if (n <= 0) this.watched.delete(packetId);
    else this.watched.set(packetId, n);
  }

  async refresh(packetId: string): Promise<PacketDetails | null> {
    try {
      const d = await this.api.redPacket(packetId);
      this.latest.set(packetId, d);
      this.emit('details', d);
      return d;
    } catch (err) {
      this.emit('error', toClientError(err));
      return null;
    }
  }

  dispose(): void {
    for (const off of this.offs) off();
    this.watched.clear();
  }

  private touched(packetId: string): void {
    if (this.watched.has(packetId)) void this.refresh(packetId);
  }

  private onMessage(m: LocalMessage): void {
    if (!m.conv || !isObj(m.body) || typeof m.body.packetId !== 'string') return;
    if (m.kind === 'redpacket') {
      this.emit('packet', { packetId: m.body.packetId, conv: m.conv, sender: m.sender, body: m.body as unknown as RedPacketBody, message: m });
    } else if (m.kind === 'redpacket.status') {
      this.emit('ended', { packetId: m.body.packetId, conv: m.conv, body: m.body as unknown as RedPacketStatusBody, message: m });
      this.touched(m.body.packetId);
    }
  }

  private onFrame(f: { type: string; [key: string]: unknown }): void {
    if (f.type !== 'redpacket.claimed') return;
    const { packetId, conv, user, amount, remainingCount } = f;
    if (typeof packetId !== 'string' || typeof conv !== 'string' || typeof user !== 'string' || typeof amount !== 'number' || typeof remainingCount !== 'number') return;
    this.emit('claimed', { packetId, conv, user, amount, remainingCount });
    this.touched(packetId);
  }
}
