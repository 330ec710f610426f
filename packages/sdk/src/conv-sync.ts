import type { ConvEntry, Message } from '@magpie/protocol';
import { MagpieClientError, toClientError } from './errors.ts';
import { LIFECYCLE_EVENT_KINDS, applyEvent } from './lifecycle.ts';
import type { LocalStore } from './local-store.ts';
import { SerialQueue } from './serial.ts';
import type { ConvsResult } from './wire.ts';

export interface ConvSyncLink {
  generation(): number;
  ready(): boolean;
  convs(since: number, limit: number): Promise<ConvsResult>;
}

export interface ConvSyncHooks {
  /**
   * An entry changed locally. `entry` is null when it was deleted (or disappeared in a
   * full reload); `previous` is the entry held before.
   */
  changed(conv: string, entry: ConvEntry | null, previous: ConvEntry | undefined): void | Promise<void>;
  progress?(received: number, version: number): void;
  error(err: MagpieClientError): void;
}

/**
 * The conversation list and its version. Changes arrive as `conv` pushes (applied directly
 * when they are the next version) and are otherwise fetched with `convs since V`, paged
 * while `more`. Deletion markers remove the entry from the visible list (a tombstone is
 * kept so an older copy can never bring it back).
 */
export class ConversationSync {
  private readonly queue = new SerialQueue();
  private version = 0;
  private syncWaiting: Promise<void> | null = null;

  constructor(
    private readonly store: LocalStore,
    private readonly link: ConvSyncLink,
    private readonly hooks: ConvSyncHooks,
    private readonly pageSize = 200,
  ) {}

  async init(): Promise<void> {
    this.version = (await this.store.loadMeta()).convVersion;
  }

  get listVersion(): number {
    return this.version;
  }

  reset(): void {
    this.version = 0;
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Fetch every change since the stored version. Coalesced like the inbox pull; rejects on failure. */
  sync(): Promise<void> {
    if (this.syncWaiting) return this.syncWaiting;
    const p = this.queue.run(async () => {
      this.syncWaiting = null;
      if (this.link.ready()) await this.runSync();
    });
    this.syncWaiting = p;
    return p;
  }

  syncQuietly(): void {
    this.sync().catch((err) => this.report(err));
  }

  /** Full sync: fetch the whole list (since 0) and replace the local one. */
  reload(): Promise<void> {
    return this.queue.run(() => this.runReload());
  }

  /** A `conv` frame. */
  pushed(entry: ConvEntry): void {
    this.queue
      .run(async () => {
        if (entry.version <= this.version) {
          await this.applyOne(entry);
        } else if (entry.version === this.version + 1) {
          await this.applyOne(entry);
          await this.setVersion(entry.version);
        } else {
          // Versions in between are missing: apply this one and fetch the rest.
          await this.applyOne(entry);
          this.syncQuietly();
        }
      })
      .catch((err) => this.report(err));
  }

  /** An entry returned by a request (read, conv.update): applied if newer, version untouched. */
  apply(entry: ConvEntry): Promise<void> {
    return this.queue.run(async () => {
      await this.applyOne(entry);
    });
  }

  /**
   * New messages were stored: move the local entries forward at once (last message,
   * unread, read state of own messages) without touching the list version, so the list
   * is current before the server's next `convs` page confirms it. Returns true when the
   * server's copy is needed: an unknown conversation, or others' group messages (mention
   * counts are known only to the server).
   *
   * Lifecycle events (recall, edit, reaction) follow the server's rules (docs/protocol.md,
   * "Events in the conversation list"): they move `lastSeq` only, never count as unread,
   * never mark anything read (also the user's own), never bring a deleted entry back and
   * are never the last message; a recall or edit of the last message rewrites it in place
   * (the preview reads "message recalled" or the new text), also when the event is older
   * than what the entry already covers.
   */
  noteMessages(messages: Message[], userId: string | null): Promise<boolean> {
    return this.queue.run(async () => {
      const byConv = new Map<string, Message[]>();
      for (const m of messages) byConv.set(m.conv, [...(byConv.get(m.conv) ?? []), m]);
      let needServer = false;
      for (const [conv, list] of byConv) {
        const prev = await this.store.getEntry(conv);
        if (!prev) needServer = true;
        const next: ConvEntry = prev ? { ...prev } : blankEntry(conv, userId);
        let changed = false;
        for (const m of list.sort((a, b) => a.seq - b.seq)) {
          if (LIFECYCLE_EVENT_KINDS.has(m.kind)) {
            const rewritten = next.lastMessage ? applyEvent(next.lastMessage, m) : null;
            if (rewritten) {
              next.lastMessage = rewritten;
              changed = true;
            }
            if (m.seq > next.lastSeq && m.seq > next.clearedSeq) {
              next.lastSeq = m.seq;
              changed = true;
            }
            continue;
          }
          if (m.seq <= next.lastSeq || m.seq <= next.clearedSeq) continue;
          changed = true;
          next.lastSeq = m.seq;
          next.lastMessage = m;
          next.deleted = false;
          if (m.sender === userId) {
            next.readSeq = Math.max(next.readSeq, m.seq);
            next.unread = 0;
            next.mentions = 0;
            next.oldestUnreadSeq = null;
          } else if (m.seq > next.readSeq) {
            next.unread++;
            next.oldestUnreadSeq ??= m.seq;
            if (next.kind !== 'direct') needServer = true;
          }
        }
        if (!changed) continue;
        await this.store.putEntries([next]);
        // A deleted entry stays hidden: only its stored copy moved.
        if (next.deleted && (!prev || prev.deleted)) continue;
        await this.hooks.changed(conv, next, prev);
      }
      return needServer;
    });
  }

  private report(err: unknown): void {
    const e = toClientError(err);
    if (e.code === 'disconnected' || e.code === 'not_connected') return;
    this.hooks.error(e);
  }

  private async setVersion(v: number): Promise<void> {
    this.version = v;
    await this.store.saveMeta({ convVersion: v });
  }

  private async runSync(): Promise<void> {
    const gen = this.link.generation();
    let since = this.version;
    let received = 0;
    for (;;) {
      const page = await this.link.convs(since, this.pageSize);
      if (this.link.generation() !== gen) return;
      for (const e of page.entries) await this.applyOne(e);
      received += page.entries.length;
      if (page.more && page.entries.length > 0) {
        since = Math.max(since, ...page.entries.map((e) => e.version));
        await this.setVersion(since);
        this.hooks.progress?.(received, since);
        continue;
      }
      await this.setVersion(Math.max(since, page.version));
      this.hooks.progress?.(received, this.version);
      return;
    }
  }

  private async runReload(): Promise<void> {
    const gen = this.link.generation();
    const all = new Map<string, ConvEntry>();
    let since = 0;
    let version = 0;
    for (;;) {
      const page = await this.link.convs(since, this.pageSize);
      if (this.link.generation() !== gen) throw new MagpieClientError('disconnected', 'connection replaced during the conversation reload');
      for (const e of page.entries) all.set(e.conv, e);
      this.hooks.progress?.(all.size, page.version);
      if (page.more && page.entries.length > 0) {
        since = Math.max(since, ...page.entries.map((e) => e.version));
        continue;
      }
      version = Math.max(since, page.version);
      break;
    }
    const before = new Map((await this.store.listEntries()).map((e) => [e.conv, e]));
    await this.store.replaceEntries([...all.values()]);
    await this.setVersion(version);
    for (const [conv, prev] of before) {
      if (!all.has(conv) && !prev.deleted) await this.hooks.changed(conv, null, prev);
    }
    for (const e of all.values()) {
      const prev = before.get(e.conv);
      if (e.clearedSeq > 0) await this.store.clearHistoryUpTo(e.conv, e.clearedSeq);
      if (prev && sameEntry(prev, e)) continue;
      if (e.deleted && (!prev || prev.deleted)) continue;
      await this.hooks.changed(e.conv, e.deleted ? null : e, prev);
    }
  }

  /** Store an entry unless the local copy is newer; returns true when something changed. */
  private async applyOne(entry: ConvEntry): Promise<boolean> {
    const prev = await this.store.getEntry(entry.conv);
    if (prev && (prev.version > entry.version || sameEntry(prev, entry))) return false;
    await this.store.putEntries([entry]);
    if (entry.clearedSeq > 0) await this.store.clearHistoryUpTo(entry.conv, entry.clearedSeq);
    if (entry.deleted && (!prev || prev.deleted)) return true; // nothing visible changed
    await this.hooks.changed(entry.conv, entry.deleted ? null : entry, prev);
    return true;
  }
}

/** A placeholder entry for a conversation first seen through a message (the server's copy replaces it). */
function blankEntry(conv: string, userId: string | null): ConvEntry {
  const direct = conv.startsWith('d:');
  const peer = direct ? (conv.slice(2).split(':').find((u) => u !== userId) ?? null) : null;
  return {
    conv,
    kind: direct ? 'direct' : 'group',
    peer,
    lastSeq: 0,
    lastMessage: null,
    readSeq: 0,
    unread: 0,
    mentions: 0,
    oldestUnreadSeq: null,
    deliveredSeq: 0,
    pinned: false,
    muted: false,
    draft: '',
    deleted: false,
    clearedSeq: 0,
    version: 0,
  };
}

function sameEntry(a: ConvEntry, b: ConvEntry): boolean {
  return a.version === b.version && JSON.stringify(a) === JSON.stringify(b);
}
