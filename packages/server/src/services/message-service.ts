import { MagpieError, serverOnlyKinds, validateMessageBody, type ConvEntry, type InboxItem, type Message } from '@magpie/protocol';
import type { Bus, BusEvent } from '../bus/bus.ts';
import type { Metrics } from '../metrics.ts';
import { StoreNotFoundError, directConversationId, type AppendOutcome, type AppendError, type AppendRequest, type EntryPatch, type InboxPointer, type Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';
import { GroupCommitter } from './group-commit.ts';
import { fitToBytes } from '../util/page-bytes.ts';
import { checkPost } from '../store/group-rules.ts';
import { isStoreUnavailable, waitForStore } from '../util/store-unavailable.ts';
import type { Principal } from './account-service.ts';
import { traceNow, type MessageTracer } from '../tracing/tracer.ts';
import { msgFrame } from '../delivery/msg-frame.ts';
import type { GroupRouter } from './group-router.ts';

export interface MessagingOptions {
  ringCapacity: number;
  syncGapThreshold: number;
  syncPageSize: number;
  maxMessageBytes: number;
  commitDelayMs: number;
  maxBatch: number;
  /**
   * The store's appends run off the event loop (the SQLite writer thread): the next batch is
   * handed over before the written one's senders are answered (GroupCommitter `overlap`).
   */
  overlapCommits?: boolean;
  /** Reply pages (history, sync, conversation list) stop growing past this many bytes and say `more`. */
  maxReplyBytes?: number;
  /** How long a send's checks wait for an unavailable database before answering `unavailable` (ms). Default 2000. */
  storeWaitMs?: number;
  /** Records each send's stages (tracing/); none: nothing is recorded. */
  tracer?: MessageTracer;
}

export interface SendInput {
  clientMsgId: string;
  to?: string;
  conv?: string;
  kind: string;
  body: unknown;
  mentions?: string[] | 'all';
}

/** A send's result; `json`: the message's JSON as its fan-out wrote it (undefined for a duplicate). */
export interface Sent {
  message: Message;
  inboxSeq: number;
  duplicate: boolean;
  json: string | undefined;
}

const withoutJson = (s: Sent): { message: Message; inboxSeq: number; duplicate: boolean } => ({ message: s.message, inboxSeq: s.inboxSeq, duplicate: s.duplicate });

/** Called once per newly committed message with every member's inbox pointer. */
export type CommittedListener = (message: Message, pointers: InboxPointer[]) => void;

/** Drops messages a reader must not see in a history page (delete-for-me, lifecycle/). */
export type HistoryFilter = (userId: string, conv: string, messages: Message[]) => Promise<Message[]>;

/**
 * Decides whether `sender` may send a direct message to `recipient`: throws (or rejects with)
 * MagpieError('forbidden', …) to refuse, otherwise answers with a pass — synchronously when it
 * needs no read.
 */
export type DirectMessagePolicy = (sender: string, recipient: string) => DirectPass | Promise<DirectPass>;

/** A direct-message policy's "yes", which a change of the relation may withdraw until the send is appended. */
export interface DirectPass {
  /**
   * Called synchronously right before the send is handed to the group committer: null when
   * the answer may be stale by now (the send checks again); otherwise the function to call
   * once that append settled (committed or failed).
   */
  hold(): (() => void) | null;
}

/** The pass of a send that no policy holds. */
const NO_HOLD = (): void => {};

/**
 * Checks and completes a client's message body before it is stored (media: the referenced
 * upload exists and may be sent; measured fields filled in). Throws a MagpieError to refuse.
 * A hook that changes the body returns a new object (never modifies the one it got): the
 * send path re-serializes the body only when a hook returned another object. It returns the
 * body itself or a promise of it (refusals as rejections); a hook with nothing to do for a
 * kind returns the body as it got it, synchronously, and costs the send no await.
 */
export type BodyHook = (sender: string, kind: string, body: unknown, conv: string, messageId: string) => unknown;

export type SyncMode = 'none' | 'incremental' | 'full';

/** A send's place in its sender's order in one conversation. */
interface SendTurn {
  /** Handed to the committer (or failed after its predecessors were): the sends after it may go. */
  handed: boolean;
  /** Sends waiting for this one; an array only once one waits. */
  waiters: (() => void)[] | null;
  /** Its key in MessagingService.sendTails (sender and conversation), made when first needed. */
  key: string | undefined;
  readonly sender: string;
  readonly conv: string;
  /** Entered in sendTails (it waited for something before its hand-over). */
  queued: boolean;
}

/** A sender's sends into one conversation: their key in MessagingService.sendTails. */
const tailKey = (sender: string, conv: string): string => `${sender}\u0000${conv}`;

/** Bound on the cache of user ids known to exist (~100 bytes each). */
const KNOWN_USERS_CAP = 200_000;

/**
 * With a writer thread, the next append batch is handed over at once only when at least this
 * multiple of the batch just committed waits (GroupCommitter's `gather`); otherwise at the end
 * of the event-loop turn, after the committed batch's callers were answered and the turn's
 * sockets read. Above 1: under a steady load the batches grow instead of splitting the
 * messages in flight into ever more commits — each commit writes a WAL page per conversation,
 * user and sender it touches plus an fsync, so ~75 messages per commit (0.5) cost the writer
 * more per message than ~120 (1.5). Measured on the saturated 1:1 bench: docs/benchmarks.md
 * ("Issue 23, server CPU per saturated 1:1 message", branch sat).
 */
const GATHER = 1.5;

/**
 * The message path: validate → group commit (durable) → reply → publish live deliveries.
 * Also the reads that serve sync: inbox pages, history pages, the conversation list.
 */
export class MessagingService {
  private readonly committer: GroupCommitter<AppendRequest, AppendOutcome>;
  private readonly committedListeners: CommittedListener[] = [];
  private readonly directPolicies: DirectMessagePolicy[] = [];
  private readonly bodyHooks: BodyHook[] = [];
  private readonly historyFilters: HistoryFilter[] = [];
  private readonly knownUsers = new Set<string>();
  /**
   * Per (sender, conversation): the newest pending send's turn (deleted once it was handed to
   * the committer or gave up). A send enters it only when it has to wait (its first await):
   * one that goes to the committer in the turn it arrived — the usual send, every check
   * answered from memory — can be overtaken by nobody, and costs no set and delete (a Map
   * going 0 → 1 → 0 entries reallocates its table each time: ~3 % of the saturated bench's
   * event loop).
   */
  private readonly sendTails = new Map<string, SendTurn>();
  /** Cluster: routes normal-group posts to their owner node (group-router.ts); none on one node. */
  private router: GroupRouter | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly opts: MessagingOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.committer = new GroupCommitter((batch) => this.commit(batch), {
      delayMs: opts.commitDelayMs,
      maxBatch: opts.maxBatch,
      // The store already waited for the database: retrying each request alone would only wait again.
      whole: isStoreUnavailable,
      // A writer thread commits off the event loop: it takes the next batch while this one is answered.
      overlap: opts.overlapCommits === true,
      // …but not a trickle the moment the writer is free (GroupCommitter's `gather`).
      gather: GATHER,
    });
  }

  /** A client's send: server-only kinds (system notices, red packets) are refused. */
  send(p: Principal, input: SendInput): Promise<{ message: Message; inboxSeq: number; duplicate: boolean }> {
    return this.sendWithJson(p, input).then(withoutJson);
  }

  /**
   * `send` for the gateway: the result also carries the message's JSON as the live fan-out
   * wrote it (`json`; undefined for a duplicate), so the sender's reply reuses that text.
   */
  sendWithJson(p: Principal, input: SendInput): Promise<Sent> {
    const r = this.router;
    // A server-only kind is never routed: sendHere refuses it here.
    if (r !== undefined && input.to === undefined && input.conv !== undefined && !serverOnlyKinds.has(input.kind) && r.routes(input.conv)) return r.send(p, input);
    return this.sendHere(p, input);
  }

  /** `sendWithJson` appended on this node, never routed (the group router's local path and its owner side). */
  sendHere(p: Principal, input: SendInput): Promise<Sent> {
    if (serverOnlyKinds.has(input.kind)) return Promise.reject(new MagpieError('forbidden', `kind ${input.kind} is written by the server only`));
    return this.post(p, input);
  }

  /** Cluster: route normal-group posts through `router` from now on. */
  setRouter(router: GroupRouter): void {
    this.router = router;
  }

  /** A message the server writes on a user's behalf (e.g. a red-packet announcement); any registered kind. */
  postAsServer(p: Principal, input: SendInput): Promise<{ message: Message; inboxSeq: number; duplicate: boolean }> {
    return this.post(p, input).then(withoutJson);
  }

  /**
   * Sends of one sender into one conversation are committed in the order they arrived here,
   * whatever their checks cost: each takes its place in a FIFO synchronously, runs its
   * preconditions (existence, block/stranger policies on their own pools) concurrently with
   * the others, and is handed to the committer only after its predecessors were (or failed).
   */
  private post(p: Principal, input: SendInput): Promise<Sent> {
    const directConv = input.to !== undefined ? directConversationId(p.userId, input.to) : undefined;
    const conv = directConv ?? input.conv ?? '';
    // No send waits anywhere (the usual state): no key to build and look up.
    const prev = this.sendTails.size === 0 ? undefined : this.sendTails.get(tailKey(p.userId, conv));
    const mine: SendTurn = { handed: false, waiters: null, key: undefined, sender: p.userId, conv, queued: false };
    return this.prepareAndSubmit(p, input, directConv, prev, mine);
  }

  /**
   * `turn` is about to wait (its first await): from now on it is the newest send of its
   * sender and conversation, the one a later send waits for. Until then nothing else could
   * run, so nothing could overtake it.
   */
  private queueTurn(turn: SendTurn): void {
    if (turn.queued || turn.handed) return;
    turn.queued = true;
    this.sendTails.set((turn.key = tailKey(turn.sender, turn.conv)), turn);
  }

  /** Let the sends after `turn` go (idempotent). */
  private handOver(turn: SendTurn): void {
    if (turn.handed) return;
    turn.handed = true;
    if (turn.queued && this.sendTails.get(turn.key!) === turn) this.sendTails.delete(turn.key!);
    const waiters = turn.waiters;
    turn.waiters = null;
    if (waiters) for (const w of waiters) w();
  }

  private async prepareAndSubmit(
    p: Principal,
    input: SendInput,
    directConv: string | undefined,
    prev: SendTurn | undefined,
    mine: SendTurn,
  ): Promise<Sent> {
    try {
      const tracer = this.opts.tracer;
      const startedAt = tracer ? traceNow() : 0;
      let body = validateMessageBody(input.kind, input.body);
      // Serialized once here (again only if a body hook changed it): the size check, the stored
      // row (AppendRequest.bodyJson), the fan-out frames and the reply all use this text.
      let bodyText = JSON.stringify(body);
      this.checkSize(bodyText);
      let conv: string;
      let directMembers: [string, string] | undefined;
      let passes: DirectPass[] | undefined;
      if (input.to !== undefined) {
        if (input.to === p.userId) throw new MagpieError('invalid', 'cannot send a direct message to yourself');
        const to = input.to;
        const wait = this.opts.storeWaitMs ?? 2000;
        // A user once found stays found (userExists): no read, no promise for a known one.
        if (!this.knownUsers.has(to)) {
          this.queueTurn(mine);
          if (!(await waitForStore(() => this.userExists(to), wait))) throw new MagpieError('not_found', `no such user: ${to}`);
        }
        // Passes answered from memory cost no await (the usual case on one node).
        const checked = this.checkDirect(p.userId, to);
        if (checked instanceof Promise) this.queueTurn(mine);
        passes = checked instanceof Promise ? await checked : checked;
        conv = directConv!;
        directMembers = [p.userId, to];
      } else {
        conv = input.conv!;
      }
      if (input.mentions !== undefined && directMembers) throw new MagpieError('invalid', 'mentions are for group messages');
      const id = timeId('m');
      tracer?.sendStarted(id, startedAt, p.userId, conv);
      let sent: Sent;
      try {
        if (this.bodyHooks.length) {
          const given = body;
          for (const hook of this.bodyHooks) {
            const next = hook(p.userId, input.kind, body, conv, id);
            if (next instanceof Promise) this.queueTurn(mine);
            body = next instanceof Promise ? await next : next;
          }
          if (body !== given) {
            bodyText = JSON.stringify(body);
            this.checkSize(bodyText);
          }
        }
        // Its turn: every earlier send of this sender into this conversation was handed to the committer (or failed).
        if (prev && !prev.handed) {
          this.queueTurn(mine);
          await new Promise<void>((r) => (prev.waiters ??= []).push(r));
        }
        const req: AppendRequest = { sender: p.userId, clientMsgId: input.clientMsgId, conv, directMembers, kind: input.kind, body, bodyJson: bodyText, time: this.now(), id };
        if (input.mentions !== undefined) req.mentions = input.mentions;
        // The policies' answers must still hold when the append is queued (a block that began
        // since waits for the sends it lets through, and refuses the ones it did not).
        let release: (() => void) | null = NO_HOLD;
        if (passes) {
          while ((release = holdAll(passes)) === null) {
            const again = this.checkDirect(p.userId, input.to!);
            if (again instanceof Promise) this.queueTurn(mine);
            passes = again instanceof Promise ? await again : again;
          }
        }
        let outcome: AppendOutcome;
        try {
          // magpie_sends_total is counted per batch in commit().
          const submitted = this.committer.submit(req);
          // submit() queued the request synchronously: the next send of this sender may go now.
          this.handOver(mine);
          // Awaited here rather than through submitAndPublish: one async frame fewer per message;
          // the fan-out still runs in commit order (every send resumes one tick after its result).
          outcome = await submitted;
        } finally {
          release();
        }
        if (!outcome.ok) throw appendError(outcome, req.conv);
        const json = outcome.duplicate ? undefined : this.publishMessage(outcome, p.tokenHash, outcome.message.body === req.body ? bodyText : undefined);
        let inboxSeq = 0;
        for (const x of outcome.pointers) {
          if (x.userId === p.userId) {
            inboxSeq = x.inboxSeq;
            break;
          }
        }
        sent = { message: outcome.message, inboxSeq, duplicate: outcome.duplicate, json };
      } catch (err) {
        tracer?.sendEnded(id, startedAt, p.userId, err instanceof MagpieError ? err.code : 'error');
        throw err;
      }
      // A duplicate's journal entry goes to the message it repeats.
      tracer?.sendEnded(id, startedAt, p.userId, sent.duplicate ? 'duplicate' : 'ok', sent.message.id);
      return sent;
    } finally {
      // A send that fails before its turn still lets its successors go once its predecessors did.
      if (!mine.handed) {
        if (!prev || prev.handed) this.handOver(mine);
        else {
          // Later sends wait for this one until its predecessors went.
          this.queueTurn(mine);
          (prev.waiters ??= []).push(() => this.handOver(mine));
        }
      }
    }
  }

  private checkSize(bodyText: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: short texts need no byte count.
    if (bodyText.length * 3 > this.opts.maxMessageBytes && Buffer.byteLength(bodyText) > this.opts.maxMessageBytes) {
      throw new MagpieError('message_too_large', `body exceeds ${this.opts.maxMessageBytes} bytes`);
    }
  }

  /**
   * Would a send of `p` to this target be accepted right now? Throws the error the send would
   * get (not a member, muted, dismissed group, mute-all, blocked or stranger policy), so a
   * caller that must do something costly first (take money for a red packet) can refuse early.
   * The send itself still checks again inside its transaction.
   */
  async checkSend(p: Principal, target: { to: string } | { conv: string }): Promise<void> {
    let peer: string | undefined;
    if ('to' in target) {
      peer = target.to;
    } else {
      const record = await this.store.getConversation(target.conv);
      if (!record) throw new MagpieError('not_found', `no such conversation: ${target.conv}`);
      if (record.kind === 'direct') {
        const [, a, b] = target.conv.split(':');
        if (a !== p.userId && b !== p.userId) throw new MagpieError('forbidden', 'not a member of this conversation');
        peer = a === p.userId ? b! : a!;
      } else {
        const group = await this.store.getGroup(target.conv);
        if (!group) throw new MagpieError('not_found', `no such conversation: ${target.conv}`);
        const refusal = checkPost(group, await this.store.getMember(target.conv, p.userId), this.now());
        if (refusal) throw appendError(refusal, target.conv);
        return;
      }
    }
    if (peer === p.userId) throw new MagpieError('invalid', 'cannot send a direct message to yourself');
    if (!(await this.userExists(peer))) throw new MagpieError('not_found', `no such user: ${peer}`);
    for (const policy of this.directPolicies) await policy(p.userId, peer);
  }

  /**
   * Every direct-message policy's pass for this send, synchronously when all of them
   * answered from memory; the first refusal throws (or rejects). A policy's read that finds
   * the database unavailable is retried within storeWaitMs.
   */
  private checkDirect(sender: string, to: string): DirectPass[] | Promise<DirectPass[]> {
    const out: DirectPass[] = [];
    const policies = this.directPolicies;
    for (let i = 0; i < policies.length; i++) {
      const policy = policies[i]!;
      const r = policy(sender, to);
      if (r instanceof Promise) return this.checkDirectAsync(sender, to, out, i, r);
      out.push(r);
    }
    return out;
  }

  private async checkDirectAsync(sender: string, to: string, out: DirectPass[], i: number, first: Promise<DirectPass>): Promise<DirectPass[]> {
    const wait = this.opts.storeWaitMs ?? 2000;
    const policies = this.directPolicies;
    let pending: Promise<DirectPass> | undefined = first;
    for (; i < policies.length; i++) {
      const policy = policies[i]!;
      const attempt = pending ?? Promise.resolve().then(() => policy(sender, to));
      pending = undefined;
      out.push(await attempt.catch((err: unknown) => (isStoreUnavailable(err) ? waitForStore(async () => policy(sender, to), wait) : Promise.reject(err))));
    }
    return out;
  }

  /** Accounts are never deleted, so a user once found stays found: the hot send path skips the read. */
  private async userExists(userId: string): Promise<boolean> {
    if (this.knownUsers.has(userId)) return true;
    if (!(await this.store.userExists(userId))) return false;
    if (this.knownUsers.size >= KNOWN_USERS_CAP) this.knownUsers.clear();
    this.knownUsers.add(userId);
    return true;
  }

  /**
   * Group-commit one request (a message, or a system notice carrying a group effect), then
   * publish its live fan-out. Throws the mapped MagpieError when the store refuses it.
   */
  commitAndPublish(req: AppendRequest, senderSession?: string): Promise<Extract<AppendOutcome, { ok: true }>> {
    // A group effect of a sender (leave, …) goes after its posts routed to the group's owner.
    const pending = this.router?.settled(req.sender, req.conv);
    if (pending) return pending.then(() => this.submitAndPublish(req, senderSession));
    return this.submitAndPublish(req, senderSession);
  }

  /** Queues `req` in the committer synchronously (commit order is call order), then awaits it. */
  private async submitAndPublish(req: AppendRequest, senderSession?: string, bodyText?: string): Promise<Extract<AppendOutcome, { ok: true }>> {
    // magpie_sends_total is counted per batch in commit().
    const outcome = await this.committer.submit(req);
    if (!outcome.ok) throw appendError(outcome, req.conv);
    if (!outcome.duplicate) this.publishMessage(outcome, senderSession, outcome.message.body === req.body ? bodyText : undefined);
    return outcome;
  }

  private async commit(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    const started = this.now();
    const tracer = this.opts.tracer;
    const traceStart = tracer ? traceNow() : 0;
    const out = await this.store.appendMessages(batch);
    this.metrics.commitBatch.observe(batch.length);
    this.metrics.commitSeconds.observe((this.now() - started) / 1000);
    const traceEnd = tracer ? traceNow() : 0;
    // magpie_sends_total by outcome: one labelled increment per outcome and batch, not per message.
    let ok = 0;
    let duplicate = 0;
    for (const o of out) {
      if (!o.ok) this.metrics.sends.inc({ outcome: o.error });
      else if (o.duplicate) duplicate++;
      else {
        ok++;
        tracer?.committed(o.message.id, traceStart, traceEnd, batch.length);
      }
    }
    if (ok > 0) this.metrics.sends.inc({ outcome: 'ok' }, ok);
    if (duplicate > 0) this.metrics.sends.inc({ outcome: 'duplicate' }, duplicate);
    return out;
  }


  /** Add a check run before every direct message (blocks, stranger policy); it throws a MagpieError to refuse. */
  addDirectPolicy(policy: DirectMessagePolicy): void {
    this.directPolicies.push(policy);
  }

  /** Add a check that may refuse or complete a message body before it is stored (see BodyHook). */
  addBodyHook(hook: BodyHook): void {
    this.bodyHooks.push(hook);
  }

  /**
   * Register a listener for committed messages (offline push, retry tracking, …). It runs
   * after the live fan-out was published; it must not throw, and a failure never fails the send.
   */
  onCommitted(listener: CommittedListener): void {
    this.committedListeners.push(listener);
  }

  /**
   * Fan-out after commit: the body is serialized once; each member's frame differs only by
   * inboxSeq. A new message without inbox pointers lives in a super group (read diffusion:
   * direct and normal-group messages always have at least the sender's pointer), so online
   * members get one `advanced` frame, the same string for all of them.
   */
  private publishMessage(outcome: Extract<AppendOutcome, { ok: true }>, senderSession: string | undefined, bodyText?: string): string {
    const tracer = this.opts.tracer;
    const traceStart = tracer ? traceNow() : 0;
    const msgId = outcome.message.id;
    const tp = tracer?.traceparent(msgId);
    const body = messageText(outcome.message, bodyText);
    const eff = outcome.effect;
    const conv = outcome.message.conv;
    // Super-group subscriptions change before this notice is published, in commit order: a
    // message committed right after a switch or a join must already reach the new followers
    // (a switch's notice still has a pointer for every member: they are the followers).
    const epoch = outcome.message.seq;
    if (eff?.becameSuper) this.bus.publish({ type: 'supers', conv, add: outcome.pointers.map((p) => p.userId), remove: [], epoch });
    else if (eff?.kind === 'super' && eff.joined.length > 0) this.bus.publish({ type: 'supers', conv, add: eff.joined, remove: [], epoch });
    if (outcome.pointers.length === 0) {
      const m = outcome.message;
      this.bus.publish({
        type: 'advance',
        conv: m.conv,
        frame: advancedFrame(m.conv, m.seq, body),
        exceptSession: senderSession,
        seq: m.seq,
        ...(outcome.epoch !== undefined ? { epoch: outcome.epoch } : {}),
      });
    }
    const sender = outcome.message.sender;
    const deliveries: Extract<BusEvent, { type: 'deliver' }>[] = [];
    for (const ptr of outcome.pointers) {
      const frame = msgFrame(ptr.inboxSeq, body);
      const ev: Extract<BusEvent, { type: 'deliver' }> = { type: 'deliver', userId: ptr.userId, frame, inboxSeq: ptr.inboxSeq, exceptSession: ptr.userId === sender ? senderSession : undefined, msgId, body };
      if (tp) ev.tp = tp;
      deliveries.push(ev);
    }
    // One call: a cluster Bus carries a big fan-out to each other node as one message.
    if (deliveries.length > 0) this.bus.publishDeliveries(deliveries);
    tracer?.fannedOut(msgId, traceStart, traceNow(), outcome.pointers.length, outcome.pointers.length === 0);
    // Those who left received the notice; from the next message on they follow nothing here.
    if (eff && eff.left.length > 0) this.bus.publish({ type: 'supers', conv, add: [], remove: eff.left, epoch });
    for (const l of this.committedListeners) {
      try {
        l(outcome.message, outcome.pointers);
      } catch {
        // Listeners are best effort by contract; the message is already durable and delivered.
      }
    }
    return body;
  }

  /** What a connecting client with inbox position `since` must do. */
  async syncMode(userId: string, since: number): Promise<{ mode: SyncMode; latest: number; ringStart: number }> {
    const { latest, ringStart } = await this.store.inboxState(userId);
    const mode: SyncMode = since === latest ? 'none' : this.tooLong(since, latest, ringStart) || (await this.belowPurge(userId, since)) ? 'full' : 'incremental';
    this.metrics.syncs.inc({ mode });
    return { mode, latest, ringStart };
  }

  /**
   * A `hello`'s reads after its connection is registered, in one statement (Store.helloState):
   * `syncMode` for inbox position `since`, the session's expiry at `now` (null: no longer
   * live), and whether the user has super groups and the device pending instructions at all.
   */
  async helloState(p: Principal, since: number, now: number): Promise<{ sync: { mode: SyncMode; latest: number; ringStart: number }; expiresAt: number | null; inSuperGroups: boolean; pendingInstructions: boolean }> {
    const s = await this.store.helloState(p.userId, p.deviceId, p.tokenHash, now);
    const { latest, ringStart } = s;
    const mode: SyncMode = since === latest ? 'none' : this.tooLong(since, latest, ringStart) || since < s.purgedInboxSeq ? 'full' : 'incremental';
    this.metrics.syncs.inc({ mode });
    return { sync: { mode, latest, ringStart }, expiresAt: s.sessionExpiresAt, inSuperGroups: s.inSuperGroups, pendingInstructions: s.pendingInstructions };
  }

  /** The retention purge removed inbox pointers above `since`: the inbox is no longer gap-free from there. */
  private async belowPurge(userId: string, since: number): Promise<boolean> {
    return since < (await this.store.inboxPurgedSeq(userId));
  }

  private tooLong(since: number, latest: number, ringStart: number): boolean {
    return since > latest || since < ringStart - 1 || latest - since > this.opts.syncGapThreshold;
  }

  /** The user's super groups with their last seq (clients sync these by conversation seq). */
  superGroupsOf(userId: string): Promise<{ conv: string; lastSeq: number }[]> {
    return this.store.superGroupsOf(userId);
  }

  private get replyBytes(): number {
    return this.opts.maxReplyBytes ?? Number.POSITIVE_INFINITY;
  }

  /** A super group's member epoch (seq of its last membership change), 0 when unknown. */
  async memberEpoch(conv: string): Promise<number> {
    return (await this.store.getConversation(conv))?.memberEpoch ?? 0;
  }

  /** Messages of `conv` after `seq` (oldest first), for the live handover of a node that just started following it. */
  messagesAfter(conv: string, seq: number, limit: number): Promise<Message[]> {
    return this.store.readHistory(conv, { after: seq, limit });
  }

  /** The user's newest inboxSeq (carried by every pong, so a lost last message is noticed). */
  async latestInboxSeq(userId: string): Promise<number> {
    return (await this.store.inboxState(userId)).latest;
  }

  /** One page of the inbox after `since`, or `full` when the gap is too long for incremental sync. */
  async syncPage(userId: string, since: number, limit?: number): Promise<{ items: InboxItem[]; inboxSeq: number; more: boolean; full: boolean }> {
    const { latest, ringStart } = await this.store.inboxState(userId);
    if (since === latest) return { items: [], inboxSeq: latest, more: false, full: false };
    if (this.tooLong(since, latest, ringStart) || (await this.belowPurge(userId, since))) {
      this.metrics.syncs.inc({ mode: 'full' });
      return { items: [], inboxSeq: latest, more: false, full: true };
    }
    const { items } = fitToBytes(await this.store.readInbox(userId, since, Math.min(limit ?? this.opts.syncPageSize, this.opts.syncPageSize)), this.replyBytes);
    this.metrics.syncItems.observe(items.length);
    const last = items.at(-1)?.inboxSeq ?? since;
    return { items, inboxSeq: latest, more: last < latest, full: false };
  }

  /**
   * A page of history. Members read the conversation except what they deleted for themselves
   * (clearedSeq) and, in a group with history visibility 'since_join' (the default), what
   * was posted before their latest join notice; a member who left or was removed reads up to
   * their removal notice and nothing after it. The reader's own group messages carry
   * `deliveredCount`.
   */
  async history(userId: string, conv: string, q: { before?: number; after?: number; limit?: number }): Promise<{ messages: Message[]; lastSeq: number; more: boolean; purgedSeq: number }> {
    const range = await this.readableRange(userId, conv);
    const purgedSeq = await this.store.purgedSeq(conv);
    // Nothing at or below the purged seq exists any more: paging stops there.
    const floor = Math.max(range.floor, purgedSeq);
    const { ceiling } = range;
    const limit = q.limit ?? 50;
    const read =
      q.after !== undefined
        ? (await this.store.readHistory(conv, { after: Math.max(q.after, floor), limit, viewer: userId })).filter((m) => m.seq <= ceiling)
        : (await this.store.readHistory(conv, { before: Math.min(q.before ?? Number.MAX_SAFE_INTEGER, ceiling + 1), limit, viewer: userId })).filter((m) => m.seq > floor);
    const { items: messages, trimmed } = fitToBytes(read, this.replyBytes);
    const more =
      q.after !== undefined
        ? (messages.at(-1)?.seq ?? ceiling) < ceiling
        : trimmed || (messages.length === limit && (messages.at(-1)?.seq ?? 0) > floor + 1);
    let shown = messages;
    for (const filter of this.historyFilters) shown = await filter(userId, conv, shown);
    return { messages: shown, lastSeq: ceiling, more, purgedSeq };
  }

  /** Add a filter applied to every history page after paging (`more` still counts the dropped messages). */
  addHistoryFilter(filter: HistoryFilter): void {
    this.historyFilters.push(filter);
  }

  /** Seqs (floor, ceiling] the user may read in `conv`; throws forbidden/not_found otherwise. */
  async readableRange(userId: string, conv: string): Promise<{ floor: number; ceiling: number }> {
    const record = await this.store.getConversation(conv);
    if (!record) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    const entry = await this.store.getEntry(userId, conv);
    const cleared = entry?.clearedSeq ?? 0;
    if (record.kind === 'direct') {
      if (!(await this.store.isMember(conv, userId))) throw new MagpieError('forbidden', `no access to conversation ${conv}`);
      return { floor: cleared, ceiling: record.lastSeq };
    }
    const [row, group] = await Promise.all([this.store.membership(conv, userId), this.store.getGroup(conv)]);
    if (!row) throw new MagpieError('forbidden', `no access to conversation ${conv}`);
    // From the (latest) join notice on, unless the group shares its whole history.
    const joinFloor = group?.historyVisibility === 'all' ? 0 : Math.max(0, row.joinedSeq - 1);
    return { floor: Math.max(cleared, joinFloor), ceiling: row.leftSeq ?? record.lastSeq };
  }

  async conversations(userId: string, since: number, limit = 200): Promise<{ version: number; entries: ConvEntry[]; more: boolean }> {
    const changes = await this.store.conversationChanges(userId, since, limit);
    const { version } = changes;
    const { items: entries, trimmed } = fitToBytes(changes.entries, this.replyBytes);
    const more = trimmed || (entries.length === limit && (entries.at(-1)?.version ?? version) < version);
    return { version, entries, more };
  }

  async markRead(p: Principal, conv: string, seq: number): Promise<ConvEntry> {
    await this.requireEntry(p.userId, conv);
    const entry = await this.store.markRead(p.userId, conv, seq);
    this.publishEntry(p, entry);
    return entry;
  }

  async updateEntry(p: Principal, conv: string, patch: EntryPatch): Promise<ConvEntry> {
    await this.requireEntry(p.userId, conv);
    const entry = await this.store.updateEntry(p.userId, conv, patch).catch(notFound);
    this.publishEntry(p, entry);
    return entry;
  }

  /** Tell the user's other devices that an entry changed (read, pin, mute, draft, delete). */
  private publishEntry(p: Principal, entry: ConvEntry): void {
    this.bus.publish({ type: 'deliver', userId: p.userId, frame: JSON.stringify({ type: 'conv', entry }), exceptSession: p.tokenHash });
  }

  private async requireEntry(userId: string, conv: string): Promise<ConvEntry> {
    const entry = await this.store.getEntry(userId, conv);
    if (!entry) {
      if (await this.store.isMember(conv, userId)) throw new MagpieError('not_found', 'conversation has no messages yet');
      throw new MagpieError((await this.store.getConversation(conv)) ? 'forbidden' : 'not_found', `no access to conversation ${conv}`);
    }
    return entry;
  }
}

/**
 * JSON of `m`, reusing `bodyText` (the JSON of `m.body`) when given. `"body":0` can only be
 * the top-level key: inside a JSON string every quote is escaped, and Message has no other
 * nested object before `body`.
 */
export function messageText(m: Message, bodyText?: string): string {
  if (bodyText === undefined) return JSON.stringify(m);
  // Exactly the eight fields a stored message has (toMessage; no deliveredCount, nothing
  // added): the same JSON as JSON.stringify of the object, without copying it first.
  if (ownKeys(m) === 8 && m.deliveredCount === undefined) {
    return flat(`{"id":${JSON.stringify(m.id)},"conv":${JSON.stringify(m.conv)},"seq":${m.seq},"sender":${JSON.stringify(m.sender)},"kind":${JSON.stringify(m.kind)},"body":${bodyText},"time":${m.time},"clientMsgId":${JSON.stringify(m.clientMsgId)}}`);
  }
  const shell = JSON.stringify({ ...m, body: 0 });
  const at = shell.indexOf('"body":0');
  return flat(`${shell.slice(0, at + 7)}${bodyText}${shell.slice(at + 8)}`);
}

/**
 * `s` as one flat string. The message text stays in the retry queue until each recipient's
 * ACK; built by concatenation it is a tree of ~16 V8 cons strings over its parts (~850 B for a
 * short 1:1 text, promoted out of the young generation under load). Measuring its UTF-8 length
 * flattens it in place into one string (~220 B), and the parts die young (issue 23).
 */
function flat(s: string): string {
  Buffer.byteLength(s);
  return s;
}

/** Hold every pass (DirectPass.hold): one release for all, or null (releasing those held) when one is stale. */
function holdAll(passes: DirectPass[]): (() => void) | null {
  if (passes.length === 1) return passes[0]!.hold();
  const held: (() => void)[] = [];
  for (const p of passes) {
    const r = p.hold();
    if (r === null) {
      for (const h of held) h();
      return null;
    }
    held.push(r);
  }
  return () => {
    for (const h of held) h();
  };
}

function ownKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

/** The `advanced` frame of a super-group message whose JSON is `body`. */
export function advancedFrame(conv: string, seq: number, body: string): string {
  return `{"type":"advanced","conv":${JSON.stringify(conv)},"seq":${seq},"message":${body}}`;
}

/** Map a store refusal to the protocol's error codes. */
export function appendError(outcome: { error: AppendError; reason?: string }, conv: string): MagpieError {
  switch (outcome.error) {
    case 'not_found':
      return new MagpieError('not_found', outcome.reason ?? `no such conversation: ${conv}`);
    case 'forbidden':
      return new MagpieError('forbidden', outcome.reason ?? 'not a member of this conversation');
    case 'muted':
      return new MagpieError('muted', outcome.reason);
    case 'full':
      return new MagpieError('group_full', outcome.reason);
    case 'dismissed':
      return new MagpieError('forbidden', outcome.reason ?? 'the group was dismissed');
    case 'invalid':
      return new MagpieError('invalid', outcome.reason);
  }
}

function notFound(err: unknown): never {
  if (err instanceof StoreNotFoundError) throw new MagpieError('not_found', err.message);
  throw err;
}
