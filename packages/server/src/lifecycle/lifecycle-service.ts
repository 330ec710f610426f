import { createHash, randomUUID } from 'node:crypto';
import {
  BundleBody,
  LIFECYCLE_FROZEN_KINDS,
  MagpieError,
  type HiddenChange,
  type Message,
  type ReactionChange,
  type ReactionSummary,
} from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { Principal } from '../services/account-service.ts';
import type { MessagingService, SendInput } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import type { SqlLifecycleStore } from './sql-lifecycle-store.ts';

export interface LifecycleOptions {
  /** A sender may recall their message this long after sending (ms). Owners/admins: any time. */
  recallWindowMs: number;
  /** A sender may edit their text message this long after sending (ms). */
  editWindowMs: number;
  /** Keep previous versions of edited messages for the participants. */
  keepEditHistory: boolean;
  /** Groups (normal and super): reaction changes of this window are coalesced into one event per conversation (ms). */
  reactionCoalesceMs: number;
  /** Distinct emojis one message may carry. */
  maxEmojisPerMessage: number;
  /** Largest message body (bytes): an edit's new body must fit. */
  maxMessageBytes: number;
}

/**
 * Callbacks for modules that mirror message content (the search index): called after the
 * change is durable, in the order changes were made on this node. They must not throw.
 */
export interface LifecycleHooks {
  onRecall?(conv: string, seq: number, by: string): void;
  onEdit?(conv: string, seq: number, text: string): void;
  onDeleteForMe?(userId: string, conv: string, seqs: readonly number[]): void;
  onReaction?(conv: string, changes: readonly ReactionChange[]): void;
}

/** What the lifecycle needs of media: drop a recalled message's references; re-authorize media copied into a bundle. */
export interface LifecycleMedia {
  removeMessageRefs(messageId: string): Promise<void>;
  prepareSend(sender: string, kind: string, body: unknown, conv: string, messageId: string): Promise<unknown>;
}

type Posted = { message: Message; inboxSeq: number; duplicate: boolean };

/** A chat history inside a chat history inside …: this many levels at most. */
const MAX_BUNDLE_DEPTH = 8;

/** The session a coalesced event comes from: none (no session's token hash is empty), so no device is skipped. */
const NO_SESSION = '';

interface PendingReactions {
  /** Who reacted in this window, in order: the event is posted as the first who may still post. */
  actors: Map<string, Principal>;
  changes: Map<string, ReactionChange>;
  timer: NodeJS.Timeout;
  done: Promise<void>;
  resolve: () => void;
}

/** A short, stable client message id for a server-posted event (the (sender, clientMsgId) pair is unique). */
function eventId(tag: string, ...parts: (string | number)[]): string {
  return `lc:${tag}:${createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 32)}`;
}

/**
 * Reply, forward, recall, delete-for-me, edit and reactions. Every change to a message is
 * posted as an event message into the conversation (MessagingService.postAsServer), so it
 * takes the conversation's next seq and reaches every device by the existing delivery and
 * sync; delete-for-me is a per-user change with its own version (the `hidden` frame).
 */
export class LifecycleService {
  private readonly hooks: LifecycleHooks[] = [];
  /** Per-key FIFO of changes made on this node (reactions per conversation, edits per message). */
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly pending = new Map<string, PendingReactions>();

  constructor(
    private readonly store: SqlLifecycleStore,
    private readonly core: Store,
    private readonly messaging: MessagingService,
    private readonly bus: Bus,
    private readonly media: LifecycleMedia | null,
    private readonly opts: LifecycleOptions,
    private readonly now: () => number = Date.now,
    private readonly log?: (err: unknown, conv: string) => void,
  ) {}

  /** Register callbacks (search index and the like). */
  on(hooks: LifecycleHooks): void {
    this.hooks.push(hooks);
  }

  private emit<K extends keyof LifecycleHooks>(name: K, ...args: Parameters<NonNullable<LifecycleHooks[K]>>): void {
    for (const h of this.hooks) {
      try {
        (h[name] as ((...a: unknown[]) => void) | undefined)?.(...args);
      } catch {
        // Hooks are best effort by contract.
      }
    }
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Message `seq` of `conv` as `userId` may read it (membership, join floor, cleared history), or not_found. */
  async readable(userId: string, conv: string, seq: number): Promise<Message> {
    const { messages } = await this.messaging.history(userId, conv, { after: seq - 1, limit: 1 });
    const m = messages[0];
    if (!m || m.seq !== seq) throw new MagpieError('not_found', `no message ${seq} in ${conv}`);
    return m;
  }

  private post(p: Principal, input: SendInput): Promise<Posted> {
    return this.messaging.postAsServer(p, input);
  }

  // --- recall ---

  async recall(p: Principal, conv: string, seq: number): Promise<{ event: Message | null }> {
    return this.serial(`m\u0000${conv}\u0000${seq}`, async () => {
      const m = await this.readable(p.userId, conv, seq);
      if (m.kind === 'recalled') return { event: null };
      if (m.kind === 'redpacket' || m.kind === 'redpacket.status') throw new MagpieError('forbidden', 'a red packet cannot be recalled');
      if (LIFECYCLE_FROZEN_KINDS.has(m.kind)) throw new MagpieError('invalid', `a ${m.kind} message cannot be recalled`);
      await this.mayRecall(p, conv, m);
      // The event first: a retry after a crash finds the message unchanged, posts the same
      // event again (idempotent: the same clientMsgId answers the first one) and then deletes.
      const event = await this.post(p, { conv, kind: 'recall', body: { seq, by: p.userId }, clientMsgId: eventId('r', conv, seq) });
      const edits = await this.store.editEvents(conv, seq, seq);
      await this.store.recall(conv, seq, m.kind, { by: p.userId, at: this.now(), kind: m.kind }, edits);
      await this.media?.removeMessageRefs(m.id);
      // The event moved every list entry before the row was rewritten: entries whose last
      // message this was change again, so devices re-sync the preview ("message recalled").
      await this.touchList(conv, seq);
      this.emit('onRecall', conv, seq, p.userId);
      return { event: event.message };
    });
  }

  /** Bump and push the list entries whose last message `seq` is (direct chats and normal groups). */
  private async touchList(conv: string, seq: number): Promise<void> {
    for (const userId of await this.core.touchLastMessage(conv, seq)) {
      const entry = await this.core.getEntry(userId, conv);
      if (entry) this.bus.publish({ type: 'deliver', userId, frame: JSON.stringify({ type: 'conv', entry }) });
    }
  }

  /**
   * An operator's removal of message `seq` (console and admin API; the caller writes the
   * audit entry). Both modes turn the stored message into the `recalled` tombstone with
   * `by: "operator"` and drop its edit history, reactions, media references and search entry.
   * `recall` also posts a `recall` event (`by: "operator"`) so every device drops its copy: in
   * a group as the group's owner, in a 1:1 as the sender; when none can post (dismissed group)
   * the event is null. `delete` posts nothing: devices that stored the message keep their copy
   * until they reload that history.
   */
  async operatorRemove(conv: string, seq: number, mode: 'recall' | 'delete'): Promise<{ message: Message; event: Message | null }> {
    return this.serial(`m\u0000${conv}\u0000${seq}`, async () => {
      const [m] = await this.core.readHistory(conv, { after: seq - 1, limit: 1 });
      if (!m || m.seq !== seq) throw new MagpieError('not_found', `no message ${seq} in ${conv}`);
      if (m.kind === 'recalled') return { message: m, event: null };
      if (LIFECYCLE_FROZEN_KINDS.has(m.kind)) throw new MagpieError('invalid', `a ${m.kind} message cannot be removed (recall the message it refers to)`);
      let event: Message | null = null;
      if (mode === 'recall') {
        const actor = await this.operatorActor(conv, m);
        if (actor) {
          try {
            event = (await this.post(actor, { conv, kind: 'recall', body: { seq, by: 'operator' }, clientMsgId: eventId('r', conv, seq) })).message;
          } catch (err) {
            if (!(err instanceof MagpieError) || !['forbidden', 'dismissed', 'muted', 'not_found'].includes(err.code)) throw err;
          }
        }
      }
      const edits = await this.store.editEvents(conv, seq, seq);
      const tombstone = { by: 'operator', at: this.now(), kind: m.kind };
      await this.store.recall(conv, seq, m.kind, tombstone, edits);
      await this.media?.removeMessageRefs(m.id);
      await this.touchList(conv, seq);
      this.emit('onRecall', conv, seq, 'operator');
      return { message: { ...m, kind: 'recalled', body: tombstone }, event };
    });
  }

  /** Who posts an operator's recall event: the owner of a group, the sender in a 1:1. */
  private async operatorActor(conv: string, m: Message): Promise<Principal | null> {
    const record = await this.core.getConversation(conv);
    if (!record) return null;
    const g = record.kind === 'direct' ? null : await this.core.getGroup(conv);
    if (record.kind !== 'direct' && (!g || g.dismissed)) return null;
    return { userId: g ? g.owner : m.sender, deviceId: 'operator', platform: 'other', tokenHash: '', appVersion: '' };
  }

  private async mayRecall(p: Principal, conv: string, m: Message): Promise<void> {
    const own = m.sender === p.userId;
    if (own && this.now() - m.time <= this.opts.recallWindowMs) return;
    const record = await this.core.getConversation(conv);
    if (record && record.kind !== 'direct') {
      const member = await this.core.getMember(conv, p.userId);
      if (member && (member.role === 'owner' || member.role === 'admin')) return;
    }
    if (own) throw new MagpieError('forbidden', `the recall window (${Math.round(this.opts.recallWindowMs / 1000)} s) has passed`);
    throw new MagpieError('forbidden', 'only the sender, or an owner or admin of the group, may recall this message');
  }

  // --- edit ---

  async edit(p: Principal, conv: string, seq: number, text: string): Promise<{ event: Message | null }> {
    return this.serial(`m\u0000${conv}\u0000${seq}`, async () => {
      const m = await this.readable(p.userId, conv, seq);
      if (m.kind === 'recalled') throw new MagpieError('invalid', 'the message was recalled');
      if (m.kind !== 'text') throw new MagpieError('invalid', 'only text messages can be edited');
      if (m.sender !== p.userId) throw new MagpieError('forbidden', 'only the sender may edit a message');
      if (this.now() - m.time > this.opts.editWindowMs) throw new MagpieError('forbidden', `the edit window (${Math.round(this.opts.editWindowMs / 1000)} s) has passed`);
      const prev = m.body as { text: string; replyTo?: number; edited?: number };
      if (prev.text === text) return { event: null };
      const at = this.now();
      const next = { ...prev, text, edited: at };
      if (Buffer.byteLength(JSON.stringify({ seq, text, editedAt: at })) > this.opts.maxMessageBytes || Buffer.byteLength(JSON.stringify(next)) > this.opts.maxMessageBytes) {
        throw new MagpieError('message_too_large', `body exceeds ${this.opts.maxMessageBytes} bytes`);
      }
      const earlier = this.opts.keepEditHistory ? [] : await this.store.editEvents(conv, seq, seq);
      // Checked before anything is written: a refusal (muted, removed) changes nothing.
      await this.messaging.checkSend(p, { conv });
      if (!(await this.store.edit(conv, seq, JSON.stringify(m.body), next, prev.text, at, this.opts.keepEditHistory, earlier))) {
        throw new MagpieError('conflict', 'the message changed meanwhile; reload and try again');
      }
      const event = await this.post(p, { conv, kind: 'edit', body: { seq, text, editedAt: at }, clientMsgId: eventId('e', conv, seq, at) });
      this.emit('onEdit', conv, seq, text);
      return { event: event.message };
    });
  }

  async editVersions(userId: string, conv: string, seq: number): Promise<{ versions: { text: string; until: number }[] }> {
    const m = await this.readable(userId, conv, seq);
    if (m.kind !== 'text') return { versions: [] };
    return { versions: await this.store.editVersions(conv, seq) };
  }

  // --- reactions ---

  async react(p: Principal, conv: string, seq: number, emoji: string, on: boolean): Promise<{ event: Message | null }> {
    const m = await this.readable(p.userId, conv, seq);
    if (LIFECYCLE_FROZEN_KINDS.has(m.kind) && m.kind !== 'redpacket') throw new MagpieError('invalid', `cannot react to a ${m.kind} message`);
    // The event is posted as this user: a refusal (muted, removed) comes before anything is stored.
    await this.messaging.checkSend(p, { conv });
    const record = await this.core.getConversation(conv);
    // Groups coalesce (a reaction in a normal group would otherwise write a pointer and an
    // entry change for every member); direct chats answer with their event at once.
    const coalesce = record !== null && record.kind !== 'direct' && this.opts.reactionCoalesceMs > 0;
    return this.serial(`c\u0000${conv}`, async () => {
      if (on && (await this.store.emojiCount(conv, seq)) >= this.opts.maxEmojisPerMessage) {
        const mine = await this.store.reactions(conv, [seq], p.userId);
        if (!mine.some((r) => r.emoji === emoji)) throw new MagpieError('invalid', `a message carries at most ${this.opts.maxEmojisPerMessage} different reactions`);
      }
      const { changed, count } = await this.store.react(conv, seq, emoji, p.userId, on, this.now());
      if (!changed) return { event: null };
      const change: ReactionChange = { seq, emoji, user: p.userId, on, count };
      if (coalesce) {
        this.queueReaction(p, conv, change);
        return { event: null };
      }
      const event = await this.post(p, { conv, kind: 'reaction', body: { changes: [change] }, clientMsgId: `lc:x:${randomUUID()}` });
      this.emit('onReaction', conv, [change]);
      return { event: event.message };
    });
  }

  /** Groups: collect changes for reactionCoalesceMs, then post one event (the last change per user, message and emoji). */
  private queueReaction(p: Principal, conv: string, change: ReactionChange): void {
    let batch = this.pending.get(conv);
    if (!batch) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const timer = setTimeout(() => void this.flushReactions(conv), this.opts.reactionCoalesceMs);
      batch = { actors: new Map(), changes: new Map(), timer, done, resolve };
      this.pending.set(conv, batch);
    }
    if (!batch.actors.has(p.userId)) batch.actors.set(p.userId, p);
    batch.changes.set(`${change.seq}\u0000${change.emoji}\u0000${change.user}`, change);
  }

  /** Post the pending coalesced reactions of `conv` now (also at stop). */
  async flushReactions(conv: string): Promise<void> {
    const batch = this.pending.get(conv);
    if (!batch) return;
    this.pending.delete(conv);
    clearTimeout(batch.timer);
    try {
      await this.serial(`c\u0000${conv}`, async () => {
        const changes = [...batch.changes.values()];
        // Counts as they are now (later changes of the window included).
        const seqs = [...new Set(changes.map((c) => c.seq))];
        const counts = new Map((await this.store.reactions(conv, seqs, '')).map((r) => [`${r.seq}\u0000${r.emoji}`, r.count]));
        for (const c of changes) c.count = counts.get(`${c.seq}\u0000${c.emoji}`) ?? 0;
        for (const part of reactionParts(changes, this.opts.maxMessageBytes)) {
          await this.postCoalesced([...batch.actors.values()], conv, part);
          this.emit('onReaction', conv, part);
        }
      });
    } catch (err) {
      // The reactions are stored; clients that missed the event read them with GET …/reactions.
      this.log?.(err, conv);
    } finally {
      batch.resolve();
    }
  }

  /**
   * Post one coalesced event. It carries other users' changes too, so it has no originating
   * session: every device of its sender receives it like everyone else's (a session's own
   * request was answered with `event: null`). It is posted as the window's first reactor who
   * may still post (one may have left or been muted since): the sender of an event is only
   * who the message names, the changes carry their own users.
   */
  private async postCoalesced(actors: Principal[], conv: string, changes: ReactionChange[]): Promise<void> {
    let last: unknown;
    const clientMsgId = `lc:x:${randomUUID()}`;
    for (const actor of actors) {
      try {
        await this.post({ ...actor, tokenHash: NO_SESSION }, { conv, kind: 'reaction', body: { changes }, clientMsgId });
        return;
      } catch (err) {
        if (!(err instanceof MagpieError) || (err.code !== 'forbidden' && err.code !== 'not_found')) throw err;
        last = err;
      }
    }
    throw last;
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((c) => this.flushReactions(c)));
  }

  async reactions(userId: string, conv: string, seqs: readonly number[]): Promise<{ reactions: ReactionSummary[] }> {
    const { floor, ceiling } = await this.messaging.readableRange(userId, conv);
    return { reactions: await this.store.reactions(conv, seqs.filter((s) => s > floor && s <= ceiling), userId) };
  }

  // --- delete for me ---

  async hide(p: Principal, conv: string, seqs: readonly number[]): Promise<{ change: HiddenChange | null }> {
    await this.messaging.readableRange(p.userId, conv);
    const change = await this.store.hide(p.userId, conv, seqs, this.now());
    if (change) {
      this.bus.publish({ type: 'deliver', userId: p.userId, frame: JSON.stringify({ type: 'hidden', change }) });
      this.emit('onDeleteForMe', p.userId, conv, change.seqs);
    }
    return { change };
  }

  hiddenChanges(userId: string, since: number, limit: number): Promise<{ version: number; changes: HiddenChange[]; more: boolean }> {
    return this.store.hiddenChanges(userId, since, limit);
  }

  /** History filter: drop the messages the reader deleted for themselves. */
  readonly historyFilter = async (userId: string, conv: string, messages: Message[]): Promise<Message[]> => {
    if (messages.length === 0) return messages;
    const hidden = await this.store.hiddenAmong(userId, conv, messages.map((m) => m.seq));
    return hidden.size === 0 ? messages : messages.filter((m) => !hidden.has(m.seq));
  };

  // --- reply and forward ---

  /**
   * Body hook for every send: a text's `replyTo` must name a message the sender can read in
   * the same conversation; `edited` is the server's to set. Bundles get their media re-authorized.
   */
  /** A text without `edited`/`replyTo` (or a kind this does not check) is returned at once, not as a promise (no await per message). */
  readonly bodyHook = (sender: string, kind: string, body: unknown, conv: string, messageId: string): unknown => {
    if (kind === 'text') {
      const b = body as { text: string; replyTo?: number; edited?: number };
      if (b.edited !== undefined) return Promise.reject(new MagpieError('invalid', '`edited` is set by the server', { details: [{ path: ['body', 'edited'], message: 'set by the server' }] }));
      if (b.replyTo === undefined) return body;
      return this.readable(sender, conv, b.replyTo).then(
        () => body,
        () => {
          throw new MagpieError('invalid', `replyTo: no message ${b.replyTo} you can read in this conversation`, { details: [{ path: ['body', 'replyTo'], message: 'no such message' }] });
        },
      );
    }
    if (kind === 'bundle' && this.media) return this.reauthorize(sender, body as BundleBody, conv, messageId, 1);
    return body;
  };

  /**
   * Re-authorize the media of a bundle for the conversation it is posted to: every item's
   * upload gains a reference from this message (readable by this conversation's members),
   * nested bundles (a chat history forwarded inside another) included, to any depth the
   * schema lets through; the sender must be able to read each upload.
   */
  private async reauthorize(sender: string, b: BundleBody, conv: string, messageId: string, depth: number): Promise<BundleBody> {
    if (depth > MAX_BUNDLE_DEPTH) throw new MagpieError('invalid', `bundles nest at most ${MAX_BUNDLE_DEPTH} deep`, { details: [{ path: ['body', 'items'], message: 'nested too deep' }] });
    const items = [];
    for (const item of b.items) {
      const inner = item.kind === 'bundle' ? BundleBody.safeParse(item.body) : null;
      if (inner && !inner.success) throw new MagpieError('invalid', 'a nested bundle is not a valid bundle', { details: [{ path: ['body', 'items'], message: inner.error.message }] });
      const body = inner ? await this.reauthorize(sender, inner.data, conv, messageId, depth + 1) : await this.media!.prepareSend(sender, item.kind, item.body, conv, messageId);
      items.push({ ...item, body });
    }
    return { ...b, items };
  }

  async forward(
    p: Principal,
    req: { from: string; seqs: number[]; to?: string; conv?: string; merged: boolean; title?: string; clientMsgId: string },
  ): Promise<{ messages: Message[] }> {
    const seqs = [...new Set(req.seqs)].sort((a, b) => a - b);
    const source: Message[] = [];
    for (const seq of seqs) {
      const m = await this.readable(p.userId, req.from, seq);
      if (LIFECYCLE_FROZEN_KINDS.has(m.kind)) throw new MagpieError('invalid', `message ${seq} is a ${m.kind} and cannot be forwarded`, { details: [{ path: ['seqs'], message: `${seq}: ${m.kind}` }] });
      source.push(m);
    }
    const target = req.to !== undefined ? { to: req.to } : { conv: req.conv! };
    if (req.conv === req.from && req.merged) throw new MagpieError('invalid', 'a merged forward goes to another conversation');
    await this.messaging.checkSend(p, target);
    if (req.merged) {
      const title = req.title ?? 'Chat history';
      const body: BundleBody = { fallback: `[Chat history] ${title}`.slice(0, 500), title, from: req.from, items: source.map((m) => ({ sender: m.sender, kind: m.kind, body: copyBody(m), time: m.time })) };
      const posted = await this.post(p, { ...target, kind: 'bundle', body, clientMsgId: `${req.clientMsgId}:0` });
      return { messages: [posted.message] };
    }
    const out: Message[] = [];
    for (const [i, m] of source.entries()) {
      const posted = await this.post(p, { ...target, kind: m.kind, body: copyBody(m), clientMsgId: `${req.clientMsgId}:${i}` });
      out.push(posted.message);
    }
    return { messages: out };
  }
}

/** The body a forwarded copy carries: a text loses its quote (another conversation's seq) and its edit mark. */
function copyBody(m: Message): unknown {
  if (m.kind === 'text') {
    const { text } = m.body as { text: string };
    return { text };
  }
  return m.body;
}

/**
 * The changes of one coalesced window as event bodies that each fit the message size limit
 * (and the schema's 1 000 changes): a busy window in a big group becomes several events, in order.
 */
export function reactionParts(changes: readonly ReactionChange[], maxBodyBytes: number): ReactionChange[][] {
  const budget = maxBodyBytes - 64; // `{"changes":[…]}` and separators
  const parts: ReactionChange[][] = [];
  let part: ReactionChange[] = [];
  let bytes = 0;
  for (const c of changes) {
    const size = Buffer.byteLength(JSON.stringify(c)) + 1;
    if (part.length > 0 && (bytes + size > budget || part.length >= 1000)) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(c);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
