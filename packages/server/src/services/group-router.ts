import { MagpieError, ErrorCodes, type ErrorCode, type Message } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { NodeLink } from '../bus/bus.ts';
import { isStoreUnavailable } from '../util/store-unavailable.ts';
import type { Principal } from './account-service.ts';
import type { Sent, SendInput } from './message-service.ts';

/** The NodeLink topic of forwarded group posts. */
export const FORWARD_TOPIC = 'post';

/** What a forwarded post carries besides the SendInput: the send's receipt extras (receipts/). */
export interface ForwardExtras {
  receipt?: unknown;
  replyTo?: unknown;
}

/** Runs a post on this node (the normal send path, checks inside its append). */
export type LocalPost = (p: Principal, input: SendInput, extras: ForwardExtras | undefined) => Promise<Sent>;

export interface GroupRouterOptions {
  /** A forward unanswered for this long is appended on this node under the same (sender, clientMsgId). */
  timeoutMs: number;
  log?: Logger;
  /** Counts posts by route: forwarded (sent to the owner), retried_here (a forward failed in transit), served (appended as owner). */
  count?: (route: 'forwarded' | 'retried_here' | 'served') => void;
}

/** Bound on the set of conversations known to be super groups (not routed). */
const SUPERS_CAP = 100_000;

/** One sender's sends into one conversation on this node (only while some are queued or in flight). */
interface Lane {
  /** Where the sends in flight went: '' this node, else the owner node's id. */
  route: string;
  inFlight: number;
  queue: Queued[];
  /** Settles when the last dispatched send settled (including its local retry). */
  tail: Promise<unknown>;
  /** Group effects of the sender waiting for the lane to empty. */
  idle: (() => void)[] | null;
}

interface Queued {
  p: Principal;
  input: SendInput;
  resolve: (s: Sent) => void;
  reject: (e: unknown) => void;
}

/**
 * Routes a normal group's plain posts to one owner node, which appends them in its own
 * group-commit batches as a single node does: appends to one group from several nodes would
 * queue on each other's row locks (docs/architecture.md, "Routing a normal group's posts").
 *
 * Owner: rendezvous hashing of the conversation id over the live nodes (NodeLink.live), so
 * every node agrees once they see the same set, and a node set change moves only the groups
 * of the node that came or went. A node alone (or with the broker down) is its own owner.
 *
 * Order (sends of one sender into one conversation are stored in arrival order): sends of a
 * lane go out in arrival order; sends to the same place (this node's FIFO in
 * MessagingService.post, or one owner: NATS keeps one publisher's order, and the owner's
 * handler takes the send's place in its FIFO synchronously) follow each other at once; a send
 * whose owner differs from the one of the sends in flight (owner died, node set changed)
 * waits until they all settled. A forward that fails in transit (no such node, timeout) is
 * appended here under the same idempotency key once every earlier send of the lane settled:
 * if the owner committed it after all, that append is its duplicate and answers with it.
 */
export class GroupRouter {
  private readonly lanes = new Map<string, Lane>();
  private readonly supers = new Set<string>();
  private ownerCache = new Map<string, string>();
  private ownerVersion = -1;
  /** Forwarded posts being appended here (serve), and who waits for none (leave). */
  private serving = 0;
  private quiet: (() => void)[] | null = null;

  constructor(
    private readonly link: NodeLink,
    private readonly local: LocalPost,
    private readonly opts: GroupRouterOptions,
  ) {}

  /** Take a forwarded post's place in this node's order synchronously and run it here; answers the sender's node. */
  serve(): void {
    this.link.serve(FORWARD_TOPIC, (payload) => {
      this.serving++;
      const answered = this.answer(payload);
      void answered.finally(() => {
        if (--this.serving === 0 && this.quiet) for (const w of this.quiet.splice(0)) w();
      });
      return answered;
    });
  }

  /**
   * Stop serving (NodeLink.leave: other nodes stop routing here and get "no responders" for
   * new forwards) and wait, at most `timeoutMs`, until the forwarded posts being appended here
   * are answered: a node that stops does not fail posts it took on for other nodes.
   */
  async leave(timeoutMs: number): Promise<void> {
    this.link.leave();
    if (this.serving === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => (this.quiet ??= []).push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Whether this conversation's posts are routed at all (a normal group's: `g:` and not known to be super). */
  routes(conv: string): boolean {
    return conv.startsWith('g:') && !this.supers.has(conv);
  }

  /** The owner of `conv`: '' when it is this node. */
  ownerOf(conv: string): string {
    const { nodes, version } = this.link.live();
    if (nodes.length <= 1) return '';
    if (version !== this.ownerVersion) {
      this.ownerVersion = version;
      this.ownerCache = new Map();
    }
    let owner = this.ownerCache.get(conv);
    if (owner === undefined) {
      let best = -1;
      owner = '';
      for (const n of nodes) {
        const w = weight(n, conv);
        if (w > best) {
          best = w;
          owner = n;
        }
      }
      if (this.ownerCache.size >= 50_000) this.ownerCache.clear();
      this.ownerCache.set(conv, owner);
    }
    return owner === this.link.self ? '' : owner;
  }

  /** A client's post into a normal group: appended here or at the owner, in the lane's order. */
  send(p: Principal, input: SendInput): Promise<Sent> {
    const key = `${p.userId}\u0000${input.conv!}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { route: '', inFlight: 0, queue: [], tail: Promise.resolve(), idle: null };
      this.lanes.set(key, lane);
    }
    const l = lane;
    return new Promise<Sent>((resolve, reject) => {
      l.queue.push({ p, input, resolve, reject });
      this.pump(key, l);
    });
  }

  /**
   * Resolves once every post of `sender` into `conv` that this node queued or sent on has
   * settled (a group effect of the sender, e.g. leave, goes after them); undefined when none is pending.
   */
  settled(sender: string, conv: string): Promise<void> | undefined {
    const lane = this.lanes.get(`${sender}\u0000${conv}`);
    if (!lane) return undefined;
    return new Promise<void>((r) => (lane.idle ??= []).push(r));
  }

  private pump(key: string, lane: Lane): void {
    while (lane.queue.length > 0) {
      const q = lane.queue[0]!;
      const route = this.routes(q.input.conv!) ? this.ownerOf(q.input.conv!) : '';
      // Another place than the sends in flight: wait until they all settled (done() pumps again).
      if (lane.inFlight > 0 && route !== lane.route) return;
      lane.queue.shift();
      lane.route = route;
      lane.inFlight++;
      const before = lane.tail;
      const run = route === '' ? this.runLocal(q) : this.forward(route, q, before);
      lane.tail = run.then(
        (s) => q.resolve(s),
        (e: unknown) => q.reject(e),
      );
      void lane.tail.then(() => this.done(key, lane));
    }
  }

  private done(key: string, lane: Lane): void {
    if (--lane.inFlight > 0) return;
    if (lane.queue.length > 0) {
      this.pump(key, lane);
      return;
    }
    if (this.lanes.get(key) === lane) this.lanes.delete(key);
    const idle = lane.idle;
    lane.idle = null;
    if (idle) for (const w of idle) w();
  }

  private runLocal(q: Queued): Promise<Sent> {
    // Synchronously up to the send's place in this node's order (MessagingService.post).
    let run: Promise<Sent>;
    try {
      run = this.local(q.p, q.input, extrasOf(q.input));
    } catch (err) {
      run = Promise.reject(err);
    }
    return run.then((s) => this.learn(q.input.conv!, s));
  }

  /** Send the post to its owner (published synchronously: lane order is publish order). */
  private forward(node: string, q: Queued, before: Promise<unknown>): Promise<Sent> {
    const { p, input } = q;
    const x = extrasOf(input);
    const payload = JSON.stringify({
      p: { userId: p.userId, deviceId: p.deviceId, platform: p.platform, tokenHash: p.tokenHash, appVersion: p.appVersion },
      i: { clientMsgId: input.clientMsgId, conv: input.conv, kind: input.kind, body: input.body, mentions: input.mentions },
      x,
    });
    this.opts.count?.('forwarded');
    let requested: Promise<string>;
    try {
      requested = this.link.request(node, FORWARD_TOPIC, payload, this.opts.timeoutMs);
    } catch (err) {
      requested = Promise.reject(err);
    }
    return requested.then(
      (reply) => this.learn(input.conv!, decodeReply(reply)),
      async (err: unknown) => {
        // Not answered (no such node any more, timeout, broker down): append here under the same
        // idempotency key, after every earlier send of the lane settled (their retries included).
        this.opts.log?.info({ err: (err as Error).message, node, clientMsgId: input.clientMsgId, conv: input.conv }, 'group post forward failed; appending locally');
        this.opts.count?.('retried_here');
        await before;
        return this.runLocal(q);
      },
    );
  }

  /** A normal-group post always gives its sender an inbox pointer; none: the group is super (not routed from now on). */
  private learn(conv: string, s: Sent): Sent {
    if (s.inboxSeq === 0 && !s.duplicate) {
      if (this.supers.size >= SUPERS_CAP) this.supers.clear();
      this.supers.add(conv);
    }
    return s;
  }

  /** The owner's side: run the forwarded post here and say how it went. */
  private answer(payload: string): Promise<string> {
    let p: Principal;
    let input: SendInput;
    let x: ForwardExtras | undefined;
    try {
      const f = JSON.parse(payload) as { p: Principal; i: SendInput; x?: ForwardExtras };
      p = f.p;
      input = f.i;
      x = f.x;
      if (typeof p?.userId !== 'string' || typeof input?.clientMsgId !== 'string' || typeof input.conv !== 'string') throw new Error('malformed');
    } catch {
      return Promise.resolve(JSON.stringify({ err: 'invalid', msg: 'malformed forwarded post' }));
    }
    this.opts.count?.('served');
    // Synchronously up to its place in this node's order (MessagingService.post).
    let run: Promise<Sent>;
    try {
      run = this.local(p, input, x);
    } catch (err) {
      run = Promise.reject(err);
    }
    return run.then(
      (s) => `${JSON.stringify({ ok: true, inboxSeq: s.inboxSeq, duplicate: s.duplicate })}\n${s.json ?? JSON.stringify(s.message)}`,
      (err: unknown) => {
        if (err instanceof MagpieError) return JSON.stringify({ err: err.code, msg: err.message, retryAfterMs: err.retryAfterMs });
        if (isStoreUnavailable(err)) return JSON.stringify({ err: 'unavailable', msg: 'the database is unavailable' });
        this.opts.log?.error({ err: (err as Error).message }, 'forwarded group post failed');
        return JSON.stringify({ err: 'internal', msg: 'internal error' });
      },
    );
  }
}

function extrasOf(input: SendInput): ForwardExtras | undefined {
  const i = input as SendInput & ForwardExtras;
  if (i.receipt === undefined && i.replyTo === undefined) return undefined;
  const x: ForwardExtras = {};
  if (i.receipt !== undefined) x.receipt = i.receipt;
  if (i.replyTo !== undefined) x.replyTo = i.replyTo;
  return x;
}

/** The owner's answer: the Sent, or the typed error the local path would have thrown. */
function decodeReply(reply: string): Sent {
  const nl = reply.indexOf('\n');
  const head = JSON.parse(nl < 0 ? reply : reply.slice(0, nl)) as { ok?: boolean; inboxSeq?: number; duplicate?: boolean; err?: string; msg?: string; retryAfterMs?: number };
  if (head.ok === true && nl >= 0) {
    const json = reply.slice(nl + 1);
    return { message: JSON.parse(json) as Message, inboxSeq: head.inboxSeq ?? 0, duplicate: head.duplicate === true, json: head.duplicate === true ? undefined : json };
  }
  const code = (head.err !== undefined && head.err in ErrorCodes ? head.err : 'internal') as ErrorCode;
  throw new MagpieError(code, head.msg ?? code, head.retryAfterMs !== undefined ? { retryAfterMs: head.retryAfterMs } : undefined);
}

/** Rendezvous weight of (node, conv): FNV-1a over both, then a final mix. */
function weight(node: string, conv: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < node.length; i++) h = Math.imul(h ^ node.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < conv.length; i++) h = Math.imul(h ^ conv.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
