import type { BusEvent } from '../bus/bus.ts';
import type { Message } from '@magpie/protocol';
import { SharedFrame, type Connection } from './connection.ts';
import type { SuperGroupIndex } from './super-index.ts';

type Advance = Extract<BusEvent, { type: 'advance' }>;
type Supers = Extract<BusEvent, { type: 'supers' }>;

export interface HandoverDeps {
  index: SuperGroupIndex;
  /** Connections of a user on this node. */
  connectionsOf(userId: string): Iterable<Connection>;
  memberEpoch(conv: string): Promise<number>;
  messagesAfter(conv: string, seq: number, limit: number): Promise<Message[]>;
  frameOf(conv: string, seq: number, body: string): string;
  delivered(n: number): void;
  /** Longest hold of an advance whose membership change has not arrived (then the epoch is read from the store). */
  holdMs?: number;
}

/** How long a removed follower still gets messages at or below its removal notice (which may arrive after the removal). */
const LEAVING_MS = 10_000;
/** Seqs delivered per conversation, remembered to drop a message that arrives both live and by catch-up. */
const SEEN_CAP = 512;
/** Messages read from the store when a node starts following a conversation through a membership change. */
const CATCH_UP_LIMIT = 200;

/**
 * Exact live handover of super-group deliveries between membership changes, across nodes.
 *
 * Every super-group message carries its member epoch (the seq of the last join/leave/switch
 * at or before it) and every `supers` event the seq of its change. A node delivers a message
 * only once it has applied every membership change up to the message's epoch: an advance that
 * overtakes its change (published by another node) is held until the `supers` event arrives.
 * So a removed member gets nothing after its removal notice, and a new follower nothing
 * before its join. A removed follower keeps receiving messages up to its removal seq for a
 * while (the notice itself may come after the removal event).
 *
 * A node that starts following a conversation through a `supers` event (it had no followers)
 * may have missed advances published before its subscription took effect: once subscribed
 * it reads the messages after the change from the store and delivers those it has not seen.
 */
export class SuperHandover {
  private readonly known = new Map<string, number>();
  private readonly held = new Map<string, { ev: Advance; timer: NodeJS.Timeout }[]>();
  private readonly leaving = new Map<string, Map<Connection, { until: number; at: number }>>();
  private readonly seen = new Map<string, Set<number>>();

  constructor(private readonly d: HandoverDeps) {}

  /** A connection started following `conv` at hello: learn the conversation's epoch once. */
  async learnEpoch(conv: string): Promise<void> {
    if (this.known.has(conv)) return;
    const e = await this.d.memberEpoch(conv).catch(() => 0);
    this.raise(conv, e);
  }

  onSupers(ev: Supers): void {
    const epoch = ev.epoch ?? 0;
    const now = Date.now();
    const fresh = !this.followed(ev.conv);
    const added: Promise<void>[] = [];
    for (const u of ev.add) {
      for (const conn of this.d.connectionsOf(u)) {
        this.leaving.get(ev.conv)?.delete(conn);
        added.push(this.d.index.add(ev.conv, conn));
      }
    }
    for (const u of ev.remove) {
      for (const conn of this.d.connectionsOf(u)) {
        if (![...this.d.index.followers(ev.conv)].includes(conn)) continue;
        this.d.index.remove(ev.conv, conn);
        let m = this.leaving.get(ev.conv);
        if (!m) this.leaving.set(ev.conv, (m = new Map()));
        m.set(conn, { until: epoch, at: now });
      }
    }
    this.raise(ev.conv, epoch);
    if (fresh && added.length > 0 && epoch > 0) void Promise.all(added).then(() => this.catchUp(ev.conv, epoch));
  }

  onAdvance(ev: Advance): void {
    const epoch = ev.epoch ?? 0;
    const known = this.known.get(ev.conv);
    if (known === undefined) {
      // First advance of a conversation this node follows without knowing its epoch yet.
      this.hold(ev);
      void this.learnEpoch(ev.conv).then(() => this.release(ev.conv));
      return;
    }
    if (epoch > known) {
      this.hold(ev);
      return;
    }
    this.deliver(ev);
  }

  private followed(conv: string): boolean {
    for (const _ of this.d.index.followers(conv)) return true;
    return false;
  }

  private hold(ev: Advance): void {
    let q = this.held.get(ev.conv);
    if (!q) this.held.set(ev.conv, (q = []));
    // The change never arrived (a lost event): after a while the store says how far memberships went.
    const timer = setTimeout(() => {
      void this.d.memberEpoch(ev.conv).then((e) => {
        this.raise(ev.conv, Math.max(e, ev.epoch ?? 0));
      });
    }, this.d.holdMs ?? 3000);
    timer.unref();
    q.push({ ev, timer });
  }

  private raise(conv: string, epoch: number): void {
    if ((this.known.get(conv) ?? -1) < epoch) this.known.set(conv, epoch);
    this.release(conv);
  }

  private release(conv: string): void {
    const q = this.held.get(conv);
    const known = this.known.get(conv);
    if (!q || known === undefined) return;
    const ready = q.filter((h) => (h.ev.epoch ?? 0) <= known);
    if (ready.length === 0) return;
    const rest = q.filter((h) => (h.ev.epoch ?? 0) > known);
    if (rest.length > 0) this.held.set(conv, rest);
    else this.held.delete(conv);
    for (const h of ready) {
      clearTimeout(h.timer);
      this.deliver(h.ev);
    }
  }

  /** `exceptUser`: a message read back from the store skips its sender's connections (they sent it). */
  private deliver(ev: Advance, exceptUser?: string): void {
    if (ev.seq !== undefined && !this.firstTime(ev.conv, ev.seq)) return;
    let n = 0;
    const frame = new SharedFrame(ev.frame);
    // One reading of each clock for the whole fan-out (Connection.sendShared).
    const wall = Date.now();
    const at = performance.now();
    const except = ev.exceptSession;
    for (const conn of this.d.index.followers(ev.conv)) {
      const p = conn.principal;
      if (p?.tokenHash === except || (exceptUser !== undefined && p?.userId === exceptUser)) continue;
      conn.sendShared(frame, wall, at);
      n++;
    }
    const gone = this.leaving.get(ev.conv);
    if (gone) {
      const now = Date.now();
      for (const [conn, l] of gone) {
        if (now - l.at > LEAVING_MS) gone.delete(conn);
        else if (ev.seq !== undefined && ev.seq <= l.until && conn.principal?.tokenHash !== ev.exceptSession) {
          conn.send(frame);
          n++;
        }
      }
      if (gone.size === 0) this.leaving.delete(ev.conv);
    }
    if (n > 0) this.d.delivered(n);
  }

  private firstTime(conv: string, seq: number): boolean {
    let s = this.seen.get(conv);
    if (!s) this.seen.set(conv, (s = new Set()));
    if (s.has(seq)) return false;
    s.add(seq);
    if (s.size > SEEN_CAP) s.delete(s.values().next().value!);
    return true;
  }

  /** The subscription is in effect: deliver what was committed after the change and may have passed before it. */
  private async catchUp(conv: string, epoch: number): Promise<void> {
    let messages: Message[];
    try {
      messages = await this.d.messagesAfter(conv, epoch, CATCH_UP_LIMIT);
    } catch {
      return; // clients still recover a gap from the next advance (history)
    }
    for (const m of messages) {
      this.deliver({ type: 'advance', conv, seq: m.seq, frame: this.d.frameOf(conv, m.seq, JSON.stringify(m)) }, m.sender);
    }
  }

  /** Forget a conversation nobody on this node follows any more. */
  lost(conv: string): void {
    this.known.delete(conv);
    this.seen.delete(conv);
    for (const h of this.held.get(conv) ?? []) clearTimeout(h.timer);
    this.held.delete(conv);
  }
}
