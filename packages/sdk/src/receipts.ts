/**
 * Read receipts, typing and presence in the SDK (issue 19). `Receipts` keeps a device's view
 * current from the live frames (`read.receipt`, `read.counts`, `typing`, `presence`,
 * `notify.setting`: feed them with `handleFrame`, e.g. from the client's `frame` event) and
 * asks the server for counts, member lists, presence and settings. Only types come from
 * @magpie/protocol (no zod in a browser bundle).
 */
import type { NotifyLevelName, PresenceState, PrivacySettings, NotifySettingWire } from '@magpie/protocol';
import { TypedEmitter } from './emitter.ts';
import { systemClock, type Clock, type TimerHandle } from './clock.ts';
import { AuthedRest, type RestApi } from './rest.ts';
import type { RequestFrame, RequestResults, RequestType } from './wire.ts';

export type { NotifyLevelName, PresenceState, PrivacySettings, NotifySettingWire } from '@magpie/protocol';

/** A message's receipt state for its sender: 1:1 `read`, groups `unread` of `total` (0 = all read). */
export type ReceiptState = { kind: 'direct'; read: boolean } | { kind: 'group'; unread: number; total: number } | { kind: 'none' };

export interface ReceiptsEvents {
  /** Receipt state of own messages in `conv` changed (1:1 read position, or group counts for `seqs`). */
  receipts: { conv: string; seqs: number[] };
  /** Who is typing in `conv` now (empty: nobody). */
  typing: { conv: string; users: string[] };
  presence: PresenceState;
  notifySetting: NotifySettingWire;
}

/** What the Receipts module needs from the client: a request on the authenticated socket. */
export interface ReceiptsTransport {
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>): Promise<RequestResults[T]>;
}


export class Receipts {
  readonly events = new TypedEmitter<ReceiptsEvents>();
  private readonly peerRead = new Map<string, number>();
  private readonly counts = new Map<string, Map<number, { unread: number; total: number }>>();
  private readonly typers = new Map<string, Map<string, TimerHandle>>();
  private readonly presenceOf = new Map<string, PresenceState>();
  private readonly notify = new Map<string, NotifySettingWire>();
  private lastTypingSent = new Map<string, number>();
  private http: AuthedRest | null = null;

  constructor(
    private readonly transport: ReceiptsTransport,
    private readonly rest?: { api: RestApi; token: () => string | undefined },
    private readonly clock: Clock = systemClock,
    /** Send `typing` at most this often per conversation (the server drops more). */
    private readonly typingEveryMs = 3000,
  ) {}

  /** Feed a server frame; true when it was one of this module's. */
  handleFrame(f: { type: string; [key: string]: unknown }): boolean {
    switch (f.type) {
      case 'read.receipt': {
        const conv = f.conv as string;
        const seq = f.seq as number;
        if (seq > (this.peerRead.get(conv) ?? 0)) {
          this.peerRead.set(conv, seq);
          this.events.emit('receipts', { conv, seqs: [seq] });
        }
        return true;
      }
      case 'read.counts': {
        const conv = f.conv as string;
        const seqs: number[] = [];
        for (const [seq, unread, total] of f.counts as [number, number, number][]) if (this.setCount(conv, seq, unread, total)) seqs.push(seq);
        if (seqs.length) this.events.emit('receipts', { conv, seqs });
        return true;
      }
      case 'typing':
        this.typingStarted(f.conv as string, f.user as string, f.expiresIn as number);
        return true;
      case 'presence': {
        const p = { user: f.user as string, online: f.online as boolean | null, lastSeen: f.lastSeen as number | null };
        this.presenceOf.set(p.user, p);
        this.events.emit('presence', p);
        return true;
      }
      case 'notify.setting': {
        const s = f.setting as NotifySettingWire;
        const cur = this.notify.get(s.conv);
        if (!cur || cur.version < s.version) {
          this.notify.set(s.conv, s);
          this.events.emit('notifySetting', s);
        }
        return true;
      }
    }
    return false;
  }

  /** Unread only falls: keep the lowest seen. */
  private setCount(conv: string, seq: number, unread: number, total: number): boolean {
    let m = this.counts.get(conv);
    if (!m) this.counts.set(conv, (m = new Map()));
    const cur = m.get(seq);
    if (cur && cur.unread <= unread) return false;
    m.set(seq, { unread, total });
    return true;
  }

  /** The sender's view of one own message: `direct` needs the conversation to be a 1:1 (`d:` ids). */
  stateOf(conv: string, seq: number): ReceiptState {
    if (conv.startsWith('d:')) return { kind: 'direct', read: (this.peerRead.get(conv) ?? 0) >= seq };
    const c = this.counts.get(conv)?.get(seq);
    return c ? { kind: 'group', ...c } : { kind: 'none' };
  }

  /** Load receipt states of own messages when a chat opens (one request for up to 500). */
  async load(conv: string, seqs: number[]): Promise<void> {
    if (seqs.length === 0) return;
    const r = await this.transport.request({ type: 'receipts.query', conv, seqs: seqs.slice(-500) });
    if (conv.startsWith('d:')) {
      if (typeof r.readSeq === 'number' && r.readSeq > (this.peerRead.get(conv) ?? 0)) this.peerRead.set(conv, r.readSeq);
      this.events.emit('receipts', { conv, seqs });
      return;
    }
    const changed: number[] = [];
    for (const [seq, unread, total] of r.counts) if (this.setCount(conv, seq, unread, total)) changed.push(seq);
    this.events.emit('receipts', { conv, seqs: changed });
  }

  /** Who read and who has not read one own group message. */
  members(conv: string, seq: number): Promise<{ read: string[]; unread: string[] }> {
    return this.transport.request({ type: 'receipts.members', conv, seq });
  }

  // --- typing ---

  /** Call on every keystroke: sends `typing` at most every `typingEveryMs` per conversation. */
  typing(conv: string): void {
    const now = this.clock.now();
    if (now - (this.lastTypingSent.get(conv) ?? -Infinity) < this.typingEveryMs) return;
    this.lastTypingSent.set(conv, now);
    void this.transport.request({ type: 'typing', conv }).catch(() => {});
  }

  /** Users typing in `conv` now. */
  typingIn(conv: string): string[] {
    return [...(this.typers.get(conv)?.keys() ?? [])];
  }

  private typingStarted(conv: string, user: string, ms: number): void {
    let m = this.typers.get(conv);
    if (!m) this.typers.set(conv, (m = new Map()));
    const old = m.get(user);
    if (old !== undefined) this.clock.clearTimeout(old);
    m.set(
      user,
      this.clock.setTimeout(() => this.typingStopped(conv, user), ms),
    );
    this.events.emit('typing', { conv, users: this.typingIn(conv) });
  }

  /** A message from `user` arrived in `conv`: they stopped typing. */
  typingStopped(conv: string, user: string): void {
    const m = this.typers.get(conv);
    const t = m?.get(user);
    if (t === undefined) return;
    this.clock.clearTimeout(t);
    m!.delete(user);
    this.events.emit('typing', { conv, users: this.typingIn(conv) });
  }

  // --- presence ---

  async subscribePresence(users: string[]): Promise<PresenceState[]> {
    const { presence } = await this.transport.request({ type: 'presence.sub', users });
    for (const p of presence) {
      this.presenceOf.set(p.user, p);
      this.events.emit('presence', p);
    }
    return presence;
  }

  presence(user: string): PresenceState | undefined {
    return this.presenceOf.get(user);
  }

  // --- settings (REST) ---

  private req<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!this.rest) return Promise.reject(new Error('Receipts: no REST API given'));
    this.http ??= new AuthedRest(this.rest.api, this.rest.token);
    return this.http.req<T>(method, path, body);
  }

  privacy(): Promise<PrivacySettings> {
    return this.req('GET', '/api/me/privacy');
  }

  setPrivacy(patch: Partial<PrivacySettings>): Promise<PrivacySettings> {
    return this.req('PUT', '/api/me/privacy', patch);
  }

  /** This user's non-default levels and the defaults; remembered for `notifyLevel`. */
  async loadNotifySettings(): Promise<{ settings: NotifySettingWire[]; defaults: { group: NotifyLevelName; super: NotifyLevelName } }> {
    const r = await this.req<{ settings: NotifySettingWire[]; defaults: { group: NotifyLevelName; super: NotifyLevelName } }>('GET', '/api/me/notify');
    for (const s of r.settings) this.notify.set(s.conv, s);
    return r;
  }

  notifyLevel(conv: string): NotifyLevelName | undefined {
    return this.notify.get(conv)?.level;
  }

  async setNotifyLevel(conv: string, level: NotifyLevelName): Promise<NotifySettingWire> {
    const { setting } = await this.req<{ setting: NotifySettingWire }>('PUT', `/api/groups/${encodeURIComponent(conv)}/notify`, { level });
    this.handleFrame({ type: 'notify.setting', setting });
    return setting;
  }

  setGroupReceipts(conv: string, enabled: boolean): Promise<{ ok: true }> {
    return this.req('PUT', `/api/groups/${encodeURIComponent(conv)}/receipts`, { enabled });
  }
}
