import { MagpieError, type Message, type NotifyLevelName, type PrivacySettings } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { Store, InboxPointer } from '../store/store.ts';
import { emptyBitmap, splitBits, withBits } from './bitmap.ts';
import type { NewTracked, NotifySetting, Privacy, ReadMark, ReceiptStore, TrackedMessage } from './receipt-store.ts';

export interface ReceiptOptions {
  /** System level: group messages need receipts unless the group or the message says otherwise. */
  groupsDefault: boolean;
  /** Groups above this member count track no receipts. */
  maxGroupMembers: number;
  /** Read reports and notices are batched for this long (ms). */
  flushMs: number;
  /** Default presence privacy of users who set none. */
  presenceDefault: Privacy['presence'];
  /** Default notification levels. */
  notifyDefaults: { group: NotifyLevelName; super: NotifyLevelName };
}

/** What the gateway knows about a send that the committed message does not carry. */
export interface SendExtras {
  receipt?: boolean | undefined;
  mentions?: string[] | 'all' | undefined;
  replyTo?: number | undefined;
}

interface Report {
  userId: string;
  conv: string;
  after: number;
  upTo: number;
}

/** Newest tracked messages one report marks at most (an old backlog read at once marks its newest). */
const MAX_MARKS_PER_REPORT = 2000;
const SETTING_CACHE_MS = 10_000;

/**
 * Read receipts (the 52im group read-receipt design): which messages need them (system →
 * group → message), the per-message bitmaps against shared member snapshots, batched read
 * reports split into one notice per original sender, the counts and member lists, and the
 * 1:1 privacy switch with reciprocity.
 */
export class ReceiptService {
  private readonly extras = new Map<string, SendExtras>();
  private readonly groupSetting = new Map<string, { at: number; enabled: boolean | null }>();
  private toTrack: { m: Message; forced: boolean }[] = [];
  private reports: Report[] = [];
  private directNotices = new Map<string, { peer: string; conv: string; seq: number; by: string }>();
  private timer: NodeJS.Timeout | null = null;
  private reportQueue: { userId: string; conv: string; seq: number; resolve: (before: number) => void; reject: (err: unknown) => void }[] = [];
  private reportWriting = false;
  private running: Promise<void> | null = null;
  /** Counters for metrics and benchmarks. */
  readonly stats = { tracked: 0, reports: 0, flushes: 0, marks: 0, notices: 0 };

  constructor(
    private readonly store: Store,
    readonly rstore: ReceiptStore,
    private readonly bus: Bus,
    readonly o: ReceiptOptions,
    private readonly now: () => number = Date.now,
  ) {}

  // --- sends ---

  /** The gateway passes a send's extras before handing it to messaging (read back in onCommitted). */
  beforeSend(sender: string, clientMsgId: string, x: SendExtras): void {
    if (x.receipt === undefined && x.mentions === undefined && x.replyTo === undefined) return;
    this.extras.set(`${sender}\u0000${clientMsgId}`, x);
  }

  afterSend(sender: string, clientMsgId: string): void {
    this.extras.delete(`${sender}\u0000${clientMsgId}`);
  }

  extrasOf(m: Message): SendExtras | undefined {
    return this.extras.get(`${m.sender}\u0000${m.clientMsgId}`);
  }

  /** MessagingService.onCommitted: group messages that need receipts are tracked (batched). */
  onCommitted = (m: Message, pointers: InboxPointer[]): void => {
    if (m.kind === 'system' || m.conv.startsWith('d:')) return;
    // Super groups (no pointers) track receipts too when small enough: the flush checks the size.
    void pointers;
    const x = this.extrasOf(m);
    if (x?.receipt === false) return;
    this.toTrack.push({ m, forced: x?.receipt === true });
    this.schedule();
  };

  private async needsReceipts(m: Message, forced: boolean): Promise<boolean> {
    if (forced) return true;
    const t = this.now();
    let s = this.groupSetting.get(m.conv);
    if (!s || t - s.at > SETTING_CACHE_MS) {
      s = { at: t, enabled: await this.rstore.groupReceipts(m.conv) };
      this.groupSetting.set(m.conv, s);
    }
    return s.enabled ?? this.o.groupsDefault;
  }

  private async trackPending(): Promise<void> {
    const batch = this.toTrack;
    this.toTrack = [];
    const rows: NewTracked[] = [];
    for (const { m, forced } of batch) {
      if (!(await this.needsReceipts(m, forced))) continue;
      const conv = await this.store.getConversation(m.conv);
      if (!conv) continue;
      const epoch = conv.memberEpoch ?? 0;
      let snap = await this.rstore.snapshot(m.conv, epoch);
      if (!snap) {
        const members = (await this.store.members(m.conv)).sort();
        if (members.length > this.o.maxGroupMembers) continue;
        snap = { conv: m.conv, epoch, members };
        await this.rstore.putSnapshot(snap, this.now());
      }
      const idx = snap.members.indexOf(m.sender);
      const { bitmap } = withBits(emptyBitmap(snap.members.length), idx >= 0 ? [idx] : []);
      rows.push({ conv: m.conv, seq: m.seq, sender: m.sender, epoch, bitmap, readCount: idx >= 0 ? 1 : 0 });
    }
    await this.rstore.track(rows);
    this.stats.tracked += rows.length;
  }

  // --- reads ---

  /** A reader marked `conv` read up to `seq` (after the conversation entry was updated). */
  async onRead(userId: string, conv: string, seq: number): Promise<void> {
    const before = await this.storeReport(userId, conv, seq);
    if (seq <= before) return;
    this.stats.reports++;
    if (conv.startsWith('d:')) {
      const [, a, b] = conv.split(':');
      const peer = a === userId ? b! : a!;
      const p = await this.privacyOf([userId, peer]);
      // Reciprocity: a reader who sends none gets none, and a sender who turned them off sees none.
      if (!p.get(userId)!.readReceipts || !p.get(peer)!.readReceipts) return;
      this.directNotices.set(`${peer}\u0000${conv}`, { peer, conv, seq, by: userId });
    } else {
      this.reports.push({ userId, conv, after: before, upTo: seq });
    }
    this.schedule();
  }

  /**
   * Reports are stored in batches: every report queued in one event-loop turn (and while the
   * previous batch commits) goes into one transaction — a burst of thousands of readers costs
   * a few commits, not one each. Each caller resumes after its report is durable.
   */
  private storeReport(userId: string, conv: string, seq: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.reportQueue.push({ userId, conv, seq, resolve, reject });
      if (!this.reportWriting) {
        this.reportWriting = true;
        setImmediate(() => void this.writeReports());
      }
    });
  }

  private async writeReports(): Promise<void> {
    while (this.reportQueue.length > 0) {
      const batch = this.reportQueue.splice(0, 5000);
      try {
        const before = await this.rstore.reportMany(batch);
        batch.forEach((r, i) => r.resolve(before[i]!));
      } catch (err) {
        for (const r of batch) r.reject(err);
      }
    }
    this.reportWriting = false;
  }

  private schedule(): void {
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.flush().finally(() => {
        this.running = null;
        if (this.toTrack.length || this.reports.length || this.directNotices.size) this.schedule();
      });
    }, this.o.flushMs);
    this.timer.unref();
  }

  /** Write what is pending now (tests and shutdown). */
  async drain(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.running) await this.running;
    if (this.toTrack.length || this.reports.length || this.directNotices.size) await this.flush();
  }

  /** One batch: track new messages, then apply every queued read report and send one notice per sender and conversation. */
  private async flush(): Promise<void> {
    this.stats.flushes++;
    try {
      await this.trackPending();
    } catch {
      // Best effort like every committed-message listener: the messages are durable; they just get no receipts.
    }
    const direct = [...this.directNotices.values()];
    this.directNotices = new Map();
    for (const n of direct) {
      this.bus.publish({ type: 'deliver', userId: n.peer, frame: JSON.stringify({ type: 'read.receipt', conv: n.conv, seq: n.seq, by: n.by }) });
      this.stats.notices++;
    }
    const reports = this.reports;
    this.reports = [];
    if (reports.length === 0) return;
    // Aggregate all bits of the batch per message, then one conditional update per message.
    const marks = new Map<string, ReadMark>();
    const byConv = new Map<string, Report[]>();
    for (const r of reports) {
      const list = byConv.get(r.conv) ?? [];
      list.push(r);
      byConv.set(r.conv, list);
    }
    for (const [conv, list] of byConv) {
      const lo = Math.min(...list.map((r) => r.after));
      const hi = Math.max(...list.map((r) => r.upTo));
      const tracked = await this.rstore.trackedBetween(conv, Math.max(lo, hi - MAX_MARKS_PER_REPORT * 4), hi, MAX_MARKS_PER_REPORT);
      for (const r of list) {
        for (const t of tracked) {
          if (t.seq <= r.after || t.seq > r.upTo || t.sender === r.userId) continue;
          const snap = await this.rstore.snapshot(conv, t.epoch);
          const i = snap ? snap.members.indexOf(r.userId) : -1;
          if (i < 0) continue;
          const key = `${conv}\u0000${t.seq}`;
          const mark = marks.get(key) ?? { conv, seq: t.seq, indices: [] };
          mark.indices.push(i);
          marks.set(key, mark);
        }
      }
    }
    this.stats.marks += marks.size;
    const changed = await this.rstore.setRead([...marks.values()]);
    // Split into one notice per original sender and conversation.
    const notices = new Map<string, { sender: string; conv: string; counts: [number, number, number][] }>();
    for (const c of changed) {
      const nkey = `${c.sender}\u0000${c.conv}`;
      const n = notices.get(nkey) ?? { sender: c.sender, conv: c.conv, counts: [] };
      n.counts.push([c.seq, c.total - c.read, c.total]);
      notices.set(nkey, n);
    }
    for (const n of notices.values()) {
      n.counts.sort((a, b) => a[0] - b[0]);
      this.bus.publish({ type: 'deliver', userId: n.sender, frame: JSON.stringify({ type: 'read.counts', conv: n.conv, counts: n.counts }) });
      this.stats.notices++;
    }
  }

  // --- queries ---

  /** Counts for many of the caller's messages (groups), or the peer's read position (1:1). */
  async query(userId: string, conv: string, seqs: number[]): Promise<{ readSeq?: number | null; counts: [number, number, number][] }> {
    await this.requireMember(userId, conv);
    if (conv.startsWith('d:')) {
      const [, a, b] = conv.split(':');
      const peer = a === userId ? b! : a!;
      const p = await this.privacyOf([userId, peer]);
      if (!p.get(userId)!.readReceipts || !p.get(peer)!.readReceipts) return { readSeq: null, counts: [] };
      const entry = await this.store.getEntry(peer, conv);
      return { readSeq: entry?.readSeq ?? 0, counts: [] };
    }
    await this.drain();
    const counts = await this.rstore.counts(conv, [...new Set(seqs)]);
    return { counts: counts.filter((c) => c.sender === userId).map((c) => [c.seq, c.total - c.read, c.total]) };
  }

  /** Read and unread members of one of the caller's group messages. */
  async members(userId: string, conv: string, seq: number): Promise<{ read: string[]; unread: string[] }> {
    await this.requireMember(userId, conv);
    await this.drain();
    const b = await this.rstore.bitmapOf(conv, seq);
    if (!b) throw new MagpieError('not_found', 'this message has no read receipts');
    if (b.sender !== userId) throw new MagpieError('forbidden', 'only the sender sees who read a message');
    const { set, clear } = splitBits(b.bitmap, b.snapshot.members.length);
    const name = (i: number) => b.snapshot.members[i]!;
    return { read: set.map(name).filter((u) => u !== userId), unread: clear.map(name).filter((u) => u !== userId) };
  }

  private async requireMember(userId: string, conv: string): Promise<void> {
    if (conv.startsWith('d:')) {
      const [, a, b] = conv.split(':');
      if (a === userId || b === userId) return;
      throw new MagpieError('forbidden', 'not a member of this conversation');
    }
    if (!(await this.store.getConversation(conv))) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    if (!(await this.store.isMember(conv, userId))) throw new MagpieError('forbidden', 'not a member of this conversation');
  }

  // --- settings ---

  async privacyOf(userIds: string[]): Promise<Map<string, Privacy>> {
    const stored = await this.rstore.privacy(userIds);
    const out = new Map<string, Privacy>();
    for (const u of userIds) out.set(u, stored.get(u) ?? { readReceipts: true, presence: this.o.presenceDefault });
    return out;
  }

  async setPrivacy(userId: string, patch: Partial<PrivacySettings>): Promise<PrivacySettings> {
    const cur = (await this.privacyOf([userId])).get(userId)!;
    const next = { ...cur, ...patch };
    await this.rstore.setPrivacy(userId, next, this.now());
    return next;
  }

  async setGroupReceipts(userId: string, conv: string, enabled: boolean): Promise<void> {
    const g = await this.store.getGroup(conv);
    if (!g || g.dismissed) throw new MagpieError('not_found', `no such group: ${conv}`);
    const m = await this.store.getMember(conv, userId);
    if (!m) throw new MagpieError('forbidden', 'not a member of this group');
    if (m.role === 'member') throw new MagpieError('forbidden', 'only the owner or an admin changes read receipts');
    await this.rstore.setGroupReceipts(conv, enabled, this.now());
    this.groupSetting.set(conv, { at: this.now(), enabled });
  }

  async setNotify(userId: string, conv: string, level: NotifyLevelName): Promise<NotifySetting> {
    if (conv.startsWith('d:') || !(await this.store.getGroup(conv))) throw new MagpieError('not_found', `no such group: ${conv}`);
    if (!(await this.store.isMember(conv, userId))) throw new MagpieError('forbidden', 'not a member of this group');
    const setting = await this.rstore.setNotify(userId, conv, level);
    // Every device of the user (the one that changed it too: it learns the version).
    this.bus.publish({ type: 'deliver', userId, frame: JSON.stringify({ type: 'notify.setting', setting }) });
    return setting;
  }

  notifySettings(userId: string): Promise<NotifySetting[]> {
    return this.rstore.notifySettings(userId);
  }

  /** Tracked messages of a conversation among `seqs` (tests). */
  tracked(conv: string, seqs: number[]): Promise<TrackedMessage[]> {
    return this.rstore.trackedAmong(conv, seqs);
  }

  async close(): Promise<void> {
    await this.drain();
  }
}
