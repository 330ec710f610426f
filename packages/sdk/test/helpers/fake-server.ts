import type { ConvEntry, InboxItem, Message } from '@magpie/protocol';
import type { WebSocketLike } from '../../src/transport/websocket.ts';
import type { FakeClock } from './fake-clock.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Frame = Record<string, any>;

/**
 * An in-memory WebSocket. Delivery is asynchronous (microtasks), never through the clock.
 * A `dead` socket is a broken link: nothing goes through in either direction and a close
 * handshake never completes.
 */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: any) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  /** Frames the client wrote (parsed), whether or not they got through. */
  readonly sent: Frame[] = [];
  dead = false;
  authed = false;
  closedByClient: { code: number | undefined; reason: string | undefined } | null = null;
  /** Conversations whose sends are held behind a refused one (see FakeServer.send). */
  readonly heldLanes = new Map<string, { clientMsgId: string; code: string; retryAfterMs: number }>();

  constructor(
    readonly server: FakeServer,
    readonly url: string,
    readonly index: number,
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('WebSocket is not open');
    const f = JSON.parse(data) as Frame;
    this.sent.push(f);
    if (this.dead) return;
    queueMicrotask(() => this.server.receive(this, f));
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedByClient = { code, reason };
    this.readyState = 2;
    if (this.dead) return; // the handshake never completes on a dead link
    queueMicrotask(() => {
      this.readyState = 3;
      this.onclose?.({ code: code ?? 1005, reason: reason ?? '', wasClean: true });
    });
  }

  // ---- server side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  refuse(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: '', wasClean: false });
  }

  /** Deliver one frame or an array of frames as one WebSocket message. */
  deliver(payload: Frame | Frame[], opts: { evenIfDead?: boolean } = {}): void {
    if (!opts.evenIfDead && (this.dead || this.readyState !== 1)) return;
    const data = JSON.stringify(payload);
    queueMicrotask(() => this.onmessage?.({ data }));
  }

  serverClose(code: number, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason, wasClean: true }));
  }

  /** The network drops the connection (no close frame). */
  drop(): void {
    this.serverClose(1006, '');
  }

  framesOfType(type: string): Frame[] {
    return this.sent.filter((f) => f.type === type);
  }
}

interface ConvState {
  entry: ConvEntry;
  messages: Message[];
}

export interface FakeServerOptions {
  userId?: string;
  deviceId?: string;
  token?: string;
}

/**
 * A scripted in-memory Magpie server for one user: hello/welcome, sync pages, send with
 * idempotency by clientMsgId, convs/history/read/conv.update, pong with inboxSeq, and
 * knobs to lose frames, refuse connections and kill links.
 */
export class FakeServer {
  readonly userId: string;
  readonly deviceId: string;
  readonly token: string;
  readonly sockets: FakeSocket[] = [];
  /** What the next connection attempts do. */
  connectMode: 'open' | 'refuse' | 'hang' = 'open';
  autoPong = true;
  helloError: { code: string; message: string } | null = null;
  forceSync: 'none' | 'incremental' | 'full' | null = null;
  /** A presented inboxSeq further behind than this gets `full`. */
  fullAfterGap = Infinity;
  /** Lowest inboxSeq still in the ring. */
  ringStart = 1;
  syncPageSize = 100;
  convsPageSize = 100;
  /** Drop the reply of the next N sync requests. */
  dropSyncReplies = 0;
  /** Drop the reply of the next N sends (the message is stored, the reply is lost). */
  dropSendReplies = 0;
  /** Script a send: return an error to answer with it, 'drop' to ignore the frame. */
  onSend: ((f: Frame) => { code: string; message: string; retryAfterMs?: number } | 'drop' | undefined) | null = null;
  /** Frame types whose handling is held until releaseHeld() (to interleave events). */
  readonly holdTypes = new Set<string>();
  private held: (() => void)[] = [];
  readonly inbox: InboxItem[] = [];
  readonly convs = new Map<string, ConvState>();
  listVersion = 0;
  private readonly sends = new Map<string, { message: Message; inboxSeq: number }>();
  readonly acks: number[] = [];
  /** Sends refused because an earlier send of the conversation was refused. */
  refusedByHold = 0;
  /** Every sync request (since, and the inboxSeqs the client said it holds beyond it). */
  readonly syncRequests: { since: number; have?: number[] }[] = [];
  private msgCounter = 0;

  constructor(
    private readonly clock: FakeClock,
    opts: FakeServerOptions = {},
  ) {
    this.userId = opts.userId ?? 'me';
    this.deviceId = opts.deviceId ?? 'dev-1';
    this.token = opts.token ?? 'tok-1';
  }

  readonly factory = (url: string): WebSocketLike => {
    const s = new FakeSocket(this, url, this.sockets.length);
    this.sockets.push(s);
    const mode = this.connectMode;
    if (mode === 'open') queueMicrotask(() => s.open());
    else if (mode === 'refuse') queueMicrotask(() => s.refuse());
    return s;
  };

  /** The newest socket. */
  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error('no socket yet');
    return s;
  }

  get latestInboxSeq(): number {
    return this.inbox.length === 0 ? 0 : this.inbox[this.inbox.length - 1]!.inboxSeq;
  }

  /** Handle the held frames now (the first `n` only, when given). */
  releaseHeld(n?: number): void {
    const h = n === undefined ? this.held : this.held.slice(0, n);
    this.held = n === undefined ? [] : this.held.slice(n);
    for (const fn of h) fn();
  }

  /** Forget the held frames: they never reach the server (lost with their connection). */
  discardHeld(): void {
    this.held = [];
  }

  // ------------------------------------------------------------ scripting helpers

  /** Ensure a conversation exists (a group unless given). */
  conv(conv: string, init: Partial<ConvEntry> = {}): ConvState {
    let c = this.convs.get(conv);
    if (!c) {
      c = {
        entry: {
          conv,
          kind: 'group',
          peer: null,
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
          version: ++this.listVersion,
          ...init,
        } as ConvEntry,
        messages: [],
      };
      this.convs.set(conv, c);
    }
    return c;
  }

  /** Store a message in conv (no inbox pointer): history only. */
  appendHistory(conv: string, sender: string, text: string, clientMsgId?: string): Message {
    const c = this.conv(conv);
    const m: Message = {
      id: `m${++this.msgCounter}`,
      conv,
      seq: c.messages.length + 1,
      sender,
      kind: 'text',
      body: { text },
      time: this.clock.now(),
      clientMsgId: clientMsgId ?? `c${this.msgCounter}`,
    };
    c.messages.push(m);
    c.entry = { ...c.entry, lastSeq: m.seq, lastMessage: m, version: ++this.listVersion };
    return m;
  }

  /** A new message for the user: stored, an inbox pointer added, and (unless push:false) pushed live. */
  incoming(conv: string, sender: string, text: string, opts: { push?: boolean } = {}): InboxItem {
    const message = this.appendHistory(conv, sender, text);
    const item = { inboxSeq: this.latestInboxSeq + 1, message };
    this.inbox.push(item);
    if (opts.push !== false) this.pushToAuthed({ type: 'msg', ...item });
    return item;
  }

  /** Change an entry (on "another device"): version bump, optional `conv` push. */
  updateEntry(conv: string, patch: Partial<ConvEntry>, opts: { push?: boolean } = {}): ConvEntry {
    const c = this.conv(conv);
    c.entry = { ...c.entry, ...patch, version: ++this.listVersion };
    if (opts.push) this.pushToAuthed({ type: 'conv', entry: c.entry });
    return c.entry;
  }

  pushToAuthed(frame: Frame | Frame[]): void {
    for (const s of this.sockets) if (s.authed && s.readyState === 1) s.deliver(frame);
  }

  /** Frames of a type the server received over all sockets. */
  received(type: string): Frame[] {
    return this.sockets.flatMap((s) => (s.dead ? [] : s.sent.filter((f) => f.type === type)));
  }

  // ------------------------------------------------------------ protocol

  receive(sock: FakeSocket, f: Frame, held = false): void {
    // Frames written before a close still arrive (as on a real socket); replies to a closed socket are dropped by deliver().
    if (!held && this.holdTypes.has(f.type)) {
      this.held.push(() => this.receive(sock, f, true));
      return;
    }
    if (!sock.authed && f.type !== 'hello') {
      sock.deliver({ type: 'error', id: f.id, code: 'hello_required', message: 'hello first' });
      return;
    }
    switch (f.type) {
      case 'hello':
        return this.hello(sock, f);
      case 'ping':
        if (this.autoPong) sock.deliver({ type: 'pong', ...(f.id !== undefined ? { id: f.id } : {}), inboxSeq: this.latestInboxSeq, time: this.clock.now() });
        return;
      case 'ack':
        this.acks.push(f.inboxSeq);
        return;
      case 'sync':
        return this.sync(sock, f);
      case 'send':
        return this.send(sock, f);
      case 'convs':
        return this.convsReq(sock, f);
      case 'history':
        return this.history(sock, f);
      case 'read': {
        const c = this.convs.get(f.conv);
        if (!c) return sock.deliver({ type: 'error', id: f.id, code: 'not_found', message: 'no such conversation' });
        const entry = this.updateEntry(f.conv, { readSeq: Math.max(c.entry.readSeq, Math.min(f.seq, c.entry.lastSeq)), unread: 0, oldestUnreadSeq: null });
        return sock.deliver({ type: 'reply', id: f.id, result: { entry } });
      }
      case 'conv.update': {
        if (!this.convs.has(f.conv)) return sock.deliver({ type: 'error', id: f.id, code: 'not_found', message: 'no such conversation' });
        const { type: _t, id: _i, conv, ...patch } = f;
        const c = this.convs.get(conv)!;
        if (patch.deleted) Object.assign(patch, { clearedSeq: c.entry.lastSeq });
        const entry = this.updateEntry(conv, patch);
        return sock.deliver({ type: 'reply', id: f.id, result: { entry } });
      }
      default:
        sock.deliver({ type: 'error', id: f.id, code: 'unknown_type', message: 'unknown' });
    }
  }

  private hello(sock: FakeSocket, f: Frame): void {
    if (this.helloError) {
      sock.deliver({ type: 'error', id: f.id, ...this.helloError });
      return;
    }
    if (f.token !== this.token) {
      sock.deliver({ type: 'error', id: f.id, code: 'unauthorized', message: 'bad token' });
      sock.serverClose(4100, 'unauthorized');
      return;
    }
    sock.authed = true;
    const latest = this.latestInboxSeq;
    const gap = latest - f.inboxSeq;
    const sync =
      this.forceSync ?? (gap <= 0 ? 'none' : gap > this.fullAfterGap || f.inboxSeq + 1 < this.ringStart ? 'full' : 'incremental');
    sock.deliver({
      type: 'reply',
      id: f.id,
      result: {
        version: 1,
        userId: this.userId,
        deviceId: this.deviceId,
        inboxSeq: latest,
        ringStart: this.ringStart,
        sync,
        heartbeatMs: 40_000,
        supers: [],
        instructions: [],
        serverTime: this.clock.now(),
        limits: { maxFrameBytes: 65536, maxMessageBytes: 16384 },
      },
    });
  }

  private sync(sock: FakeSocket, f: Frame): void {
    {
      const latest = this.latestInboxSeq;
      if (f.since + 1 < this.ringStart && f.since < latest) {
        sock.deliver({ type: 'reply', id: f.id, result: { items: [], inboxSeq: latest, more: false, full: true } });
        return;
      }
      const limit = Math.min(f.limit ?? 100, this.syncPageSize);
      const after = this.inbox.filter((i) => i.inboxSeq > f.since);
      const items = after.slice(0, limit);
      this.syncRequests.push({ since: f.since, ...(f.have !== undefined ? { have: f.have } : {}) });
      if (this.dropSyncReplies > 0) {
        this.dropSyncReplies--;
        return;
      }
      sock.deliver({ type: 'reply', id: f.id, result: { items, inboxSeq: latest, more: after.length > items.length, full: false } });
    }
  }

  private send(sock: FakeSocket, f: Frame): void {
    // As the real gateway: behind a send refused with a retryable error, every other send of
    // that conversation on this connection is refused until the refused one comes again.
    const lane = f.conv ?? `to:${f.to}`;
    const held = sock.heldLanes.get(lane);
    if (held && held.clientMsgId !== f.clientMsgId) {
      this.refusedByHold++;
      sock.deliver({ type: 'error', id: f.id, code: held.code, message: 'held behind an earlier refused send', retryAfterMs: held.retryAfterMs });
      return;
    }
    sock.heldLanes.delete(lane);
    const scripted = this.onSend?.(f);
    if (scripted === 'drop') return;
    if (scripted) {
      if (['rate_limited', 'unavailable', 'internal'].includes(scripted.code)) sock.heldLanes.set(lane, { clientMsgId: f.clientMsgId, code: scripted.code, retryAfterMs: scripted.retryAfterMs ?? 0 });
      sock.deliver({ type: 'error', id: f.id, ...scripted });
      return;
    }
    let result = this.sends.get(f.clientMsgId);
    let duplicate = true;
    if (!result) {
      duplicate = false;
      const conv = f.conv ?? (this.userId < f.to ? `d:${this.userId}:${f.to}` : `d:${f.to}:${this.userId}`);
      if (!f.conv) this.conv(conv, { kind: 'direct', peer: f.to });
      const message = this.appendHistory(conv, this.userId, f.body?.text ?? '', f.clientMsgId);
      message.kind = f.kind;
      message.body = f.body;
      const item = { inboxSeq: this.latestInboxSeq + 1, message };
      this.inbox.push(item);
      result = item;
      this.sends.set(f.clientMsgId, result);
    }
    if (this.dropSendReplies > 0) {
      this.dropSendReplies--;
      return;
    }
    sock.deliver({ type: 'reply', id: f.id, result: { message: result.message, inboxSeq: result.inboxSeq, duplicate } });
  }

  private convsReq(sock: FakeSocket, f: Frame): void {
    const changed = [...this.convs.values()].map((c) => c.entry).filter((e) => e.version > f.since).sort((a, b) => a.version - b.version);
    const limit = Math.min(f.limit ?? 100, this.convsPageSize);
    const entries = changed.slice(0, limit);
    sock.deliver({ type: 'reply', id: f.id, result: { version: this.listVersion, entries, more: changed.length > entries.length } });
  }

  private history(sock: FakeSocket, f: Frame): void {
    const c = this.convs.get(f.conv);
    if (!c) return sock.deliver({ type: 'error', id: f.id, code: 'not_found', message: 'no such conversation' });
    const limit = f.limit ?? 30;
    const visible = c.messages.filter((m) => m.seq > c.entry.clearedSeq);
    let messages: Message[];
    let more: boolean;
    if (f.after !== undefined) {
      const all = visible.filter((m) => m.seq > f.after);
      messages = all.slice(0, limit);
      more = all.length > limit;
    } else {
      const all = visible.filter((m) => f.before === undefined || m.seq < f.before).reverse();
      messages = all.slice(0, limit);
      more = all.length > limit;
    }
    sock.deliver({ type: 'reply', id: f.id, result: { messages, lastSeq: c.entry.lastSeq, more } });
  }
}
