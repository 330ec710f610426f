/**
 * The message lifecycle in the SDK (issue 18): `LifecycleApi` (REST: recall, edit, reactions,
 * delete-for-me, forward) and `LifecycleSync`, which keeps the local store current from the
 * lifecycle events every device receives in conversation order (kinds `recall`, `edit`,
 * `reaction`) and from the user's delete-for-me changes (`hidden` frames, `GET /api/hidden`).
 * Pure helpers (`applyEvent`, `ReactionBook`) hold the rules so every client applies events
 * the same way. Only types are imported from @magpie/protocol (no zod in a browser bundle).
 */
import type { HiddenChange, Message, ReactionChange, ReactionSummary } from '@magpie/protocol';
import { TypedEmitter } from './emitter.ts';
import { toClientError, type MagpieClientError } from './errors.ts';
import type { LocalStore } from './local-store.ts';
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

export type { HiddenChange, ReactionChange, ReactionSummary } from '@magpie/protocol';

/** Event kinds: they change earlier messages and show no bubble of their own. */
export const LIFECYCLE_EVENT_KINDS: ReadonlySet<string> = new Set(['recall', 'edit', 'reaction']);
/** A message deleted for this user, as the local store keeps it (never sent by the server). */
export const LOCAL_HIDDEN_KIND = 'hidden.local';


const msgPath = (conv: string, seq: number) => `/api/conversations/${encodeURIComponent(conv)}/messages/${seq}`;

export interface ForwardInput {
  from: string;
  seqs: number[];
  to?: string;
  conv?: string;
  /** One chat-history card instead of one message per original. */
  merged?: boolean;
  title?: string;
  clientMsgId: string;
}

/** REST calls of the lifecycle; each rejects with a MagpieClientError carrying the server's code. */
export class LifecycleApi {
  private readonly http: AuthedRest;

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  recall(conv: string, seq: number): Promise<{ event: Message | null }> {
    return this.http.req('POST', `${msgPath(conv, seq)}/recall`);
  }

  edit(conv: string, seq: number, text: string): Promise<{ event: Message | null }> {
    return this.http.req('POST', `${msgPath(conv, seq)}/edit`, { text });
  }

  editHistory(conv: string, seq: number): Promise<{ versions: { text: string; until: number }[] }> {
    return this.http.req('GET', `${msgPath(conv, seq)}/edits`);
  }

  react(conv: string, seq: number, emoji: string, on = true): Promise<{ event: Message | null }> {
    return this.http.req(on ? 'PUT' : 'DELETE', `${msgPath(conv, seq)}/reactions/${encodeURIComponent(emoji)}`);
  }

  reactions(conv: string, seqs: readonly number[]): Promise<{ reactions: ReactionSummary[] }> {
    return this.http.req('GET', `/api/conversations/${encodeURIComponent(conv)}/reactions?seqs=${seqs.slice(0, 200).join(',')}`);
  }

  hide(conv: string, seqs: readonly number[]): Promise<{ change: HiddenChange | null }> {
    return this.http.req('POST', `/api/conversations/${encodeURIComponent(conv)}/hide`, { seqs });
  }

  hidden(since: number, limit = 200): Promise<{ version: number; changes: HiddenChange[]; more: boolean }> {
    return this.http.req('GET', `/api/hidden?since=${since}&limit=${limit}`);
  }

  forward(input: ForwardInput): Promise<{ messages: Message[] }> {
    return this.http.req('POST', '/api/forward', input);
  }
}

/**
 * Apply one lifecycle event to the message it targets (the same conversation, `body.seq`);
 * returns the updated target, or null when the event does not change it. Pure.
 */
export function applyEvent(target: Message, event: Message): Message | null {
  const b = event.body as { seq?: number; by?: string; text?: string; editedAt?: number };
  if (event.conv !== target.conv || b.seq !== target.seq) return null;
  if (event.kind === 'recall') {
    if (target.kind === 'recalled') return null;
    return { ...target, kind: 'recalled', body: { by: b.by ?? event.sender, at: event.time, kind: target.kind } };
  }
  if (event.kind === 'edit' && target.kind === 'text' && typeof b.text === 'string') {
    const cur = target.body as { text: string; edited?: number };
    if ((cur.edited ?? 0) >= (b.editedAt ?? 0)) return null;
    return { ...target, body: { ...cur, text: b.text, edited: b.editedAt } };
  }
  return null;
}

/** Reactions of one conversation's messages: server summaries, then events applied in order (counts are absolute). */
export class ReactionBook {
  private readonly bySeq = new Map<number, Map<string, { count: number; mine: boolean; users: string[] }>>();

  constructor(private readonly me: string | null) {}

  /** Replace what is known of these messages with server summaries (`GET …/reactions`). */
  load(seqs: readonly number[], summaries: readonly ReactionSummary[]): void {
    for (const s of seqs) this.bySeq.delete(s);
    for (const r of summaries) this.emojis(r.seq).set(r.emoji, { count: r.count, mine: r.mine, users: [...r.users] });
  }

  apply(changes: readonly ReactionChange[]): number[] {
    const touched = new Set<number>();
    for (const c of changes) {
      const map = this.emojis(c.seq);
      const cur = map.get(c.emoji) ?? { count: 0, mine: false, users: [] };
      const users = c.on ? (cur.users.includes(c.user) ? cur.users : [...cur.users, c.user]) : cur.users.filter((u) => u !== c.user);
      const next = { count: c.count, mine: c.user === this.me ? c.on : cur.mine, users };
      if (next.count <= 0) map.delete(c.emoji);
      else map.set(c.emoji, next);
      touched.add(c.seq);
    }
    return [...touched];
  }

  /** Emoji chips of a message, in first-seen order. */
  of(seq: number): { emoji: string; count: number; mine: boolean; users: string[] }[] {
    return [...(this.bySeq.get(seq) ?? new Map()).entries()].map(([emoji, r]) => ({ emoji, ...r }));
  }

  private emojis(seq: number): Map<string, { count: number; mine: boolean; users: string[] }> {
    let m = this.bySeq.get(seq);
    if (!m) this.bySeq.set(seq, (m = new Map()));
    return m;
  }
}

export interface LifecycleSyncEvents {
  /** A stored message changed (recalled, edited, or deleted for this user: kind `hidden.local`). */
  changed: { conv: string; message: Message };
  /** Reaction changes of a conversation, in order. */
  reactions: { conv: string; changes: ReactionChange[] };
  /** This user deleted messages (on this or another device). */
  hidden: HiddenChange;
  error: MagpieClientError;
}

/** What LifecycleSync needs of the client: its message stream, raw frames and connection state. */
export interface LifecycleSource {
  on(event: 'message', fn: (m: { conv: string | null; seq: number | null; kind: string; body: unknown; sender: string; time: number; id: string | null; clientMsgId: string }) => void): () => void;
  on(event: 'frame', fn: (f: { type: string; [key: string]: unknown }) => void): () => void;
  on(event: 'state', fn: (e: { state: string; previous: string }) => void): () => void;
}

/**
 * Keeps the local store in step with lifecycle events: a recall or edit rewrites the stored
 * target, delete-for-me replaces it with a local `hidden.local` marker. Delete-for-me changes
 * are applied in version order (a gap pulls `GET /api/hidden?since=local`), and pulled again
 * on every reconnect.
 */
export class LifecycleSync {
  private readonly emitter: TypedEmitter<LifecycleSyncEvents>;
  private version = 0;
  private pulling: Promise<void> | null = null;
  private readonly offs: (() => void)[] = [];
  /** Store writes in event order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: LifecycleApi,
    private readonly store: LocalStore,
    opts: { version?: number; onListenerError?: (err: unknown) => void } = {},
  ) {
    this.emitter = new TypedEmitter<LifecycleSyncEvents>(opts.onListenerError);
    this.version = opts.version ?? 0;
  }

  on<K extends keyof LifecycleSyncEvents>(event: K, fn: (payload: LifecycleSyncEvents[K]) => void): () => void {
    return this.emitter.on(event, fn);
  }

  /** The delete-for-me version applied so far. */
  get hiddenVersion(): number {
    return this.version;
  }

  attach(client: LifecycleSource): () => void {
    this.offs.push(
      client.on('message', (m) => {
        if (m.conv === null || m.seq === null || !LIFECYCLE_EVENT_KINDS.has(m.kind)) return;
        this.onEvent({ ...m, conv: m.conv, seq: m.seq, id: m.id ?? '' } as Message);
      }),
      client.on('frame', (f) => {
        if (f.type === 'hidden') this.onHidden(f.change as HiddenChange);
      }),
      client.on('state', (e) => {
        if (e.state === 'online') void this.pull();
      }),
    );
    return () => this.detach();
  }

  detach(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /** Feed one event message (also usable without `attach`). */
  onEvent(event: Message): void {
    if (event.kind === 'reaction') {
      const changes = (event.body as { changes?: ReactionChange[] }).changes ?? [];
      this.emitter.emit('reactions', { conv: event.conv, changes });
      return;
    }
    const seq = (event.body as { seq?: number }).seq;
    if (typeof seq !== 'number') return;
    this.enqueue(async () => {
      const [target] = await this.store.getMessages(event.conv, seq, seq);
      if (!target || target.seq !== seq) return;
      const next = applyEvent(target, event);
      if (!next) return;
      await this.store.putMessages(event.conv, [next], []);
      this.emitter.emit('changed', { conv: event.conv, message: next });
    });
  }

  /** A `hidden` change: applied at local+1, ignored when old, a gap pulls. */
  onHidden(change: HiddenChange): void {
    if (!change || typeof change.version !== 'number') return;
    if (change.version <= this.version) return;
    if (change.version > this.version + 1) {
      void this.pull();
      return;
    }
    this.version = change.version;
    this.applyHidden(change);
  }

  private applyHidden(change: HiddenChange): void {
    this.enqueue(async () => {
      const lo = Math.min(...change.seqs);
      const hi = Math.max(...change.seqs);
      const stored = await this.store.getMessages(change.conv, lo, hi);
      const want = new Set(change.seqs);
      const marked = stored.filter((m) => want.has(m.seq) && m.kind !== LOCAL_HIDDEN_KIND).map((m) => ({ ...m, kind: LOCAL_HIDDEN_KIND, body: {} }));
      if (marked.length) await this.store.putMessages(change.conv, marked, []);
      for (const m of marked) this.emitter.emit('changed', { conv: change.conv, message: m });
      this.emitter.emit('hidden', change);
    });
  }

  /** Pull delete-for-me changes after the local version (on reconnect and on a gap). */
  pull(): Promise<void> {
    this.pulling ??= (async () => {
      try {
        for (;;) {
          const page = await this.api.hidden(this.version);
          for (const c of page.changes) {
            if (c.version <= this.version) continue;
            this.version = c.version;
            this.applyHidden(c);
          }
          if (!page.more || page.changes.length === 0) {
            this.version = Math.max(this.version, page.version);
            break;
          }
        }
      } catch (err) {
        this.emitter.emit('error', toClientError(err));
      } finally {
        this.pulling = null;
      }
    })();
    return this.pulling;
  }

  /** Resolves when every store write queued so far is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => this.emitter.emit('error', toClientError(err)));
  }
}
