/**
 * Several tabs of one browser are one device: they share the token and the device id. The
 * server sends a session's own changes (messages sent, read marks, pins, mutes, drafts,
 * deletions) only to the user's *other* sessions, so tabs tell each other:
 *
 * - One tab leads: the one holding the Web Lock `magpie-store` keeps the IndexedDB store.
 *   The others follow with an in-memory store (their own socket still receives everything
 *   the server pushes), so no two tabs ever write one database. A follower stays a follower
 *   until it is reloaded; the next tab opened after the leader closed leads. A reloaded leader
 *   waits up to RELOAD_WAIT_MS for its old document to let the lock go, and leads again. A
 *   follower starts from a copy of the stored conversation list (session.ts), so even a tab
 *   that did not get the lock shows the list at once, offline too.
 * - Every change a tab makes itself is posted on the BroadcastChannel `magpie-tabs`; the
 *   other tabs then pull the inbox and the conversation list, and show the same data.
 */
import type { ConvEntry, MagpieClient } from '@magpie/sdk';
import { bootMark } from './boot.ts';

const LOCK = 'magpie-store';
const CHANNEL = 'magpie-tabs';

/**
 * How long a reloaded page waits for the lock of the document it replaces: that document
 * releases it when it unloads, which a busy browser does a moment after the new one starts.
 * Without the wait the reloaded tab would follow with an in-memory store for the rest of its
 * life (it shows the stored list, but keeps nothing it receives for the next start).
 */
const RELOAD_WAIT_MS = 3000;

/** Try to lead: resolves true with the lock held until `release`, false when another tab leads. */
export function claimStore(): Promise<{ leader: boolean; release(): void }> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  // Without Web Locks (an insecure origin) this tab keeps the old single-tab behaviour.
  if (!locks) return Promise.resolve({ leader: true, release: () => undefined });
  const lead = (resolve: (r: { leader: boolean; release(): void }) => void) => () => new Promise<void>((release) => resolve({ leader: true, release: () => release() }));
  return new Promise((resolve) => {
    void locks.request(LOCK, { ifAvailable: true }, (lock) => {
      if (lock) return lead(resolve)();
      if (!isReload()) {
        resolve({ leader: false, release: () => undefined });
        return undefined;
      }
      // Held, and this page is a reload: most likely by the document being replaced.
      bootMark('store-lock-busy');
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), RELOAD_WAIT_MS);
      locks
        .request(LOCK, { signal: abort.signal }, () => {
          clearTimeout(timer);
          return lead(resolve)();
        })
        .catch(() => resolve({ leader: false, release: () => undefined }));
      return undefined;
    });
  });
}

/** Whether this document was loaded by a reload (the lock may still be held by the one it replaces). */
function isReload(): boolean {
  const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
  return nav?.type === 'reload';
}

type Poke = { userId: string; kind: 'sent' } | { userId: string; kind: 'conv'; version: number };

/** Tells the other tabs about this tab's own changes, and pulls when they report theirs. */
export class TabSync {
  private readonly channel: BroadcastChannel | null;
  private readonly mine = new Set<string>();
  private seen = 0;
  private pullTimer: ReturnType<typeof setTimeout> | null = null;
  private postTimer: ReturnType<typeof setTimeout> | null = null;
  private pendingVersion = 0;
  private readonly offs: (() => void)[] = [];

  constructor(
    private readonly client: MagpieClient,
    private readonly userId: string,
  ) {
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
    if (!this.channel) return;
    this.channel.onmessage = (e: MessageEvent<Poke>) => this.onPoke(e.data);
    this.offs.push(
      client.on('message', (m) => {
        if (!m.own) return;
        if (m.state === 'sending') this.mine.add(m.clientMsgId);
        else if ((m.state === 'sent' || m.state === 'delivered') && this.mine.delete(m.clientMsgId)) this.post({ userId, kind: 'sent' });
      }),
      client.on('conversation', ({ entry }: { entry: ConvEntry | null }) => this.noteVersion(entry?.version ?? Number.MAX_SAFE_INTEGER)),
    );
  }

  /** A conversation entry changed here (by this tab, or by a pull): the others pull if it is news to them. */
  private noteVersion(v: number): void {
    const news = v > this.seen;
    if (v !== Number.MAX_SAFE_INTEGER) this.seen = Math.max(this.seen, v);
    if (!news) return;
    this.pendingVersion = Math.max(this.pendingVersion, v);
    if (this.postTimer) return;
    this.postTimer = setTimeout(() => {
      this.postTimer = null;
      this.post({ userId: this.userId, kind: 'conv', version: this.pendingVersion });
      this.pendingVersion = 0;
    }, 100);
  }

  private post(p: Poke): void {
    try {
      this.channel?.postMessage(p);
    } catch {
      /* closed */
    }
  }

  private onPoke(p: Poke): void {
    if (!p || p.userId !== this.userId) return;
    if (p.kind === 'conv' && p.version <= Math.max(this.seen, this.client.conversationListVersion)) return;
    if (this.pullTimer) return;
    this.pullTimer = setTimeout(() => {
      this.pullTimer = null;
      void this.client.refresh().catch(() => undefined);
    }, 50);
  }

  dispose(): void {
    for (const off of this.offs) off();
    if (this.pullTimer) clearTimeout(this.pullTimer);
    if (this.postTimer) clearTimeout(this.postTimer);
    this.channel?.close();
  }
}
