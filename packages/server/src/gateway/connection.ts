import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CloseCodes, type CloseReason } from '@magpie/protocol';
import type { Principal } from '../services/account-service.ts';
import { ObtainedTracker } from './obtained.ts';
import type { SendBudget } from './send-budget.ts';

/**
 * Connections with queued frames, flushed by setImmediate callbacks (a fan-out to thousands
 * of connections schedules one callback, not one per connection). One callback writes for at
 * least FLUSH_SLICE_MS and then yields to the event loop while the connection next in line
 * has waited less than FLUSH_MAX_WAIT_MS, so a 5 000-follower fan-out does not hold every
 * other socket (ACKs, sends, their replies) for its whole length; the rest of the list is
 * written in the next callbacks, in order. A connection still waiting in the list when more
 * frames are queued for it writes them all together (one write instead of several). Once
 * the head of the list has waited FLUSH_MAX_WAIT_MS the callback writes on without yielding
 * until the list is empty: output then has priority over reading more input, so a server
 * that falls behind is held back by its sockets (as when every flush ran to completion)
 * instead of accepting work faster than it can deliver it.
 * Every connection in the list is flushed: the list is only ever consumed from its head, and
 * connections queued meanwhile are appended behind it.
 */
let dirty: Connection[] = [];
/** Index of the next connection of `dirty` to flush. */
let dirtyHead = 0;
/**
 * Connections with an answer to a request queued (a send's ACK: Connection.send `urgent`):
 * flushed at the start of every flush callback, before `dirty`, so a sender's ACK leaves as
 * soon as its message is durable instead of behind the fan-out of that very message to
 * thousands of members (which queued its frames first, in the same turn). Small by nature:
 * at most one entry per connection with requests answered since the last callback.
 */
let urgent: Connection[] = [];
let flushScheduled = false;
/** Run of one flush callback before it may yield (ms). */
const FLUSH_SLICE_MS = 4;
/** A connection waiting this long in the list (ms) is written without yielding again. */
const FLUSH_MAX_WAIT_MS = 40;
/** Connections flushed between two looks at the clock. */
const FLUSH_CLOCK_EVERY = 32;
/** Shared batches remembered at most (the cache is dropped when it grows past this or the list empties). */
const SHARED_BATCHES_MAX = 256;
/**
 * While dirty connections wait: batches made only of shared frames, by their ids. Followers
 * of the same super groups queue the same frames, so the batch (`[a,b,…]`) is built, framed
 * and encoded once and its bytes written to each of them. Frames never change, so an entry
 * stays valid; the map only bounds memory.
 */
let sharedBatches: Map<string, SharedFrame> | null = null;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushDirty);
}

function flushDirty(): void {
  flushScheduled = false;
  if (sharedBatches === null || sharedBatches.size > SHARED_BATCHES_MAX) {
    sharedBatches = new Map();
    lastBatchFrames = null;
    lastBatch = null;
  }
  if (urgent.length > 0) {
    const first = urgent;
    urgent = [];
    for (let i = 0; i < first.length; i++) first[i]!.flushUrgent();
  }
  const deadline = performance.now() + FLUSH_SLICE_MS;
  let n = 0;
  try {
    while (dirtyHead < dirty.length) {
      const conn = dirty[dirtyHead]!;
      dirty[dirtyHead++] = undefined as unknown as Connection;
      conn.flush();
      if (++n % FLUSH_CLOCK_EVERY !== 0 || dirtyHead >= dirty.length) continue;
      const now = performance.now();
      if (now > deadline && now - dirty[dirtyHead]!.dirtyAt < FLUSH_MAX_WAIT_MS) break;
    }
  } finally {
    if (dirtyHead < dirty.length) {
      // Under sustained load the list may never empty: drop its consumed head now and then.
      if (dirtyHead >= 4096 && dirtyHead * 2 >= dirty.length) {
        dirty = dirty.slice(dirtyHead);
        dirtyHead = 0;
      }
      scheduleFlush();
    } else {
      dirty = [];
      dirtyHead = 0;
      sharedBatches = null;
      lastBatchFrames = null;
      lastBatch = null;
    }
  }
}

let nextSharedId = 0;

/**
 * One text frame written to many connections (a super-group `advanced` fan-out): the
 * WebSocket frame bytes — header and UTF-8 payload — are built once, on first use, and the
 * same Buffer is written to every connection that has nothing else queued. `ws.send(string)`
 * would measure, frame, cork and encode the payload again for each of the 5 000 followers.
 */
export class SharedFrame {
  private wire: Buffer | undefined;
  /** Identity within this process (keys the shared batches of a flush). */
  readonly id = nextSharedId++;

  constructor(readonly text: string) {}

  /** The complete unmasked server→client text frame (RFC 6455 §5.2). */
  bytes(): Buffer {
    return (this.wire ??= textFrame(this.text));
  }
}

/**
 * A complete unmasked server→client text frame (RFC 6455 §5.2) in one Buffer: the header,
 * then the UTF-8 payload written in place (one allocation, one socket write).
 */
export function textFrame(text: string): Buffer {
  const n = Buffer.byteLength(text, 'utf8');
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81; // FIN + text opcode
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.write(text, head, 'utf8');
  return frame;
}

type Queued = string | SharedFrame;

/** The part of a net.Socket's libuv handle that its own pause()/resume() use for sockets made with `onread`. */
interface ReadHandle {
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

/**
 * Stop taking the socket's data from the kernel while its connection's requests wait (a
 * plain TCP socket; false when not stopped). A paused net.Socket only stops emitting: its
 * handle goes on reading each arriving packet into a Buffer of its own, up to the stream's
 * highWaterMark (16 KB), so an overloaded server held every frame its 10 000 waiting clients
 * sent as one JS Buffer each (~118 000 of them, ~40 MB, promoted and marked by the GC), read
 * with one syscall per packet. Stopped, the frames wait in the kernel's socket buffer (TCP
 * pushes back on the client) and are read in one piece when the connection goes on.
 *
 * Only the handle is stopped: its `reading` flag, which Node keeps for its own reads, is left
 * set. Node's Readable calls the socket's `_read` in a `maybeReadMore` tick after every chunk
 * it emits, and `_read` starts a handle whose `reading` is false (net.js tryReadStart): a stop
 * that cleared the flag (what Node's own pause() does for sockets made with `onread`, and what
 * this did until issue 23 branch rx23) was undone one tick after the frame that made it — the
 * stop is made while that frame is handled — and the client's frames went on piling up in the
 * connection's backlog (1 000 of 1 000 in test/connection-held-unread.test.ts). Node clears
 * the flag itself only when a read fills its stream, and no read comes while the handle is
 * stopped. startReading undoes the stop. TLS sockets are left alone (their handle wraps the
 * TCP one).
 */
function stopReading(raw: RawSocket | undefined): boolean {
  if (!stoppable(raw)) return false;
  const h = (raw as { _handle?: ReadHandle | null })._handle!;
  if (h.reading !== true) return false;
  h.readStop!();
  return true;
}

/** A plain TCP socket whose handle stopReading can stop. */
function stoppable(raw: RawSocket | undefined): boolean {
  if (!raw || (raw as { encrypted?: boolean }).encrypted) return false;
  const h = (raw as { _handle?: ReadHandle | null })._handle;
  return !!h && typeof h.readStop === 'function' && typeof h.readStart === 'function';
}

/**
 * Undo stopReading (unless the socket is gone). Node's `reading` flag is still set (nothing
 * read meanwhile could clear it); were it cleared, Node starts the handle itself when its
 * stream wants more.
 */
function startReading(raw: RawSocket | undefined): void {
  const h = (raw as { _handle?: ReadHandle | null } | undefined)?._handle;
  if (!h || h.reading !== true || typeof h.readStart !== 'function') return;
  h.readStart();
}

/** A request run by a connection when a slot frees: `run` calls `done` exactly once, when it has finished. */
export interface ConnectionTask {
  run(done: () => void): void;
  /** Counted against the node's send budget (ConnectionLimits.sends): it also waits for a slot there. */
  readonly budgeted?: boolean;
  /**
   * May start ahead of waiting budgeted sends (an ACK of an authenticated connection: it
   * refers only to what the device was given, never to a send that has not started). Read in
   * the same piece as sends that wait for the budget, it is handled at once instead of behind
   * them: its deliveries end (their retries and memory with them) without waiting their turn.
   */
  readonly overtakes?: boolean;
}

/** The frames of the last shared batch looked up, and that batch (consecutive followers queue the same frames). */
let lastBatchFrames: SharedFrame[] | null = null;
let lastBatch: SharedFrame | null = null;

/** The batch frame of these shared frames, made once per flush turn. */
function sharedBatchOf(cache: Map<string, SharedFrame>, frames: SharedFrame[]): SharedFrame {
  const prev = lastBatchFrames;
  if (prev !== null && prev.length === frames.length) {
    let same = true;
    for (let i = 0; i < frames.length; i++) {
      if (prev[i] !== frames[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastBatch!;
  }
  let key = String(frames[0]!.id);
  for (let i = 1; i < frames.length; i++) key += `,${frames[i]!.id}`;
  let batch = cache.get(key);
  if (!batch) cache.set(key, (batch = new SharedFrame(`[${frames.map((f) => f.text).join(',')}]`)));
  lastBatchFrames = frames;
  lastBatch = batch;
  return batch;
}

/** The part of the upgraded socket (a net.Socket or any Duplex) a connection writes to. */
export type RawSocket = Pick<Duplex, 'writable' | 'write' | 'on' | 'writableLength'>;

const NO_BYTES = Buffer.alloc(0);

/**
 * Node's stream_base binding (what net.Socket's own writes use): `WriteWrap` is the request
 * object a handle's `writeBuffer` takes, `streamBaseState[kLastWriteWasAsync]` says whether
 * the write's bytes all went to the kernel at once. Undefined where the binding is not
 * available (the stream path is used then).
 */
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Uint8Array | Int32Array;
  kLastWriteWasAsync: number;
}
/** A WriteWrap: `oncomplete` is called (with `this` = the request) when an async write is through. */
interface WriteReq {
  handle?: unknown;
  oncomplete?: (this: WriteReq, status: number) => void;
  async?: boolean;
  bytes?: number;
  buffer?: Buffer | null;
  conn?: Connection;
}
/** The handle of a plain TCP socket (net.Socket's `_handle`): a libuv stream. */
interface WriteHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
}
const streamWrap: StreamWrapBinding | undefined = (() => {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap === 'function' && b.streamBaseState && typeof b.kLastWriteWasAsync === 'number') return b as StreamWrapBinding;
  } catch {
    // not available: every write goes through the socket's stream
  }
  return undefined;
})();
/** The request object for the next direct write; reused while writes complete at once (only an async write keeps its own). */
let spareReq: WriteReq | undefined;

/** A direct write that waited in libuv is through (or failed): called with `this` = its request. */
function directWriteDone(this: WriteReq, status: number): void {
  const conn = this.conn!;
  const n = this.buffer!.length;
  this.buffer = null;
  this.conn = undefined;
  conn.directWritten(n, status);
}

/**
 * Set to false to make every write go through the socket's stream (tests compare the two paths).
 * @internal
 */
export const directWrites = { enabled: streamWrap !== undefined };

const textOf = (f: Queued): string => (typeof f === 'string' ? f : f.text);

/** Queued frames are coalesced into WebSocket messages of about this size, so a write completes (and shows progress) in reasonable time even on a slow link. */
const BATCH_BYTES = 64 * 1024;

/** A connection's output and request budget (see Config `limits`). */
export interface ConnectionLimits {
  /** Output (queued frames plus the socket's unsent bytes) above this closes the connection with 4501. */
  maxBuffered: number;
  /** Requests other than sends handled at once; further frames wait, and the socket is not read while any wait (after the next frame that arrives: Connection.stopOnNextFrame). */
  maxInflight: number;
  /**
   * `send` frames (ConnectionTask.budgeted) handled at once, a window of their own next to
   * `maxInflight` (issue 23: with 8 for everything, 16 saturating pairs with 16 sends in
   * flight each fed the group commit one batch at a time). A send's reply is an ACK of at most
   * maxMessageBytes plus ~1 KiB (see the output bound in docs/operations.md). Unset: sends
   * share `maxInflight` with the other requests.
   */
  maxSendsInflight?: number;
  /** Pending output that the peer has not taken for this long makes it a slow consumer (4501). */
  stallMs: number;
  /** The node's budget of sends handled at once, over all connections (gateway/send-budget.ts). */
  sends?: SendBudget;
}

/**
 * One client connection. Outgoing frames are queued and written when the connection's turn
 * in the flush list comes (the next event-loop turn, or later while a large fan-out is being
 * written; see flushDirty): several queued frames go out as one JSON array in one WebSocket
 * message when the client announced the `batch` capability.
 *
 * Output is budgeted (issue 13: 100 `history` requests of 93 bytes held 1.6 GB): frames are
 * handed to the socket only while its unsent bytes are below a quarter of `maxBuffered`, the
 * rest waits here, whole frames, until the socket drains. Requests start only while the output
 * is below that mark and their window has room (`maxSendsInflight` sends, `maxInflight` other
 * requests; the head of the backlog waits for its own and nothing passes it); otherwise they wait and the
 * socket is not read, so a client that asks faster than it reads is slowed by TCP, not by
 * server memory. A reading client is never cut off for its own replies
 * (quarter mark + maxInflight × reply page + maxSendsInflight × ACK < maxBuffered; an ACK is
 * at most maxMessageBytes + 1 KiB: docs/operations.md); one that stops reading is closed
 * with 4501 when events push the output over `maxBuffered`, or when nothing moved for
 * `stallMs`. The close frame then waits behind what the socket already holds (about the
 * quarter mark), not behind the dropped queue.
 */
export class Connection {
  principal: Principal | undefined;
  /** The client's announced heartbeat interval (ms). */
  heartbeatMs: number;
  lastSeen: number;
  batching = false;
  /** The client announced the `ack` capability: its deliveries are tracked for retry. */
  acks = false;
  /** What of its inbox this device was given here (its ACKs raise delivered state only that far). */
  readonly obtained = new ObtainedTracker();
  /** The node whose batched fan-out delivered the latest live `msg` here (BusEvent `via`; undefined: this node's own): where this device's ACKs are written (AckService.route). */
  ackVia: string | undefined = undefined;
  closed = false;
  /** Closes the connection when its session expires (set by the gateway once that is near). */
  expiryTimer: NodeJS.Timeout | undefined;
  /** When the session ends (ms since the epoch; set after `hello`). */
  expiresAt = Number.POSITIVE_INFINITY;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  /** In the `urgent` flush list (an answer waits in its queue). */
  private urgentQueued = false;
  /** When it last joined the flush list (performance.now()). */
  dirtyAt = 0;
  private errorCount = 0;
  private errorWindowStart = 0;
  /** Requests waiting for a slot, in arrival order. */
  private backlog: ConnectionTask[] = [];
  private backlogHead = 0;
  /** Requests in the backlog that are not budgeted sends (while 0, an ACK may go ahead of them). */
  private waitingOther = 0;
  /** Requests running (sends included). */
  private inflight = 0;
  /** Sends running (their window: ConnectionLimits.maxSendsInflight). */
  private inflightSends = 0;
  /** The window of sends, or undefined: they count in `maxInflight` like any request. */
  private readonly maxSends: number | undefined;
  /** In pump's loop: a request that finishes synchronously (an ACK) lets the loop go on instead of pumping again inside it. */
  private pumping = false;
  /** One completion callback for all requests (no closure or promise per request). */
  private readonly taskDone = (): void => {
    this.inflight--;
    if (this.inflight === 0 && this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
  };
  /** The completion of a send in its own window (no node budget). */
  private readonly sendDone = (): void => {
    this.inflightSends--;
    this.taskDone();
  };
  /** The completion of a budgeted request: its slot of the node's send budget is free again. */
  private readonly budgetedDone = (): void => {
    this.limits.sends!.give();
    if (this.maxSends !== undefined) this.inflightSends--;
    this.taskDone();
  };
  private readPaused = false;
  /** stopReading stopped the socket's handle while reads are paused (startReading restarts it). */
  private readStopped = false;
  /**
   * Reads are paused but the plain TCP socket's handle still reads: it is stopped when the
   * next frame arrives (`submit`). A wait that ends before the client sends anything more —
   * most of them: a send waiting one commit for the node's budget — then costs no
   * stop and restart of the handle (libuv: an epoll_ctl to re-arm the socket, often two,
   * and one more to drop it if data came meanwhile; ~7 % of an overloaded open loop's event
   * loop). Bound: what arrives up to and including the next complete frame (at most one
   * frame of ws's maxPayload, and the rest of the piece read with it) more than stopping at
   * once; those frames wait in the backlog like the one that started the wait. Control
   * frames (pings) do not stop it: ws answers them, and unread answers end in slow_consumer.
   */
  private stopOnNextFrame = false;
  /** This connection paused ws (its fallback when the handle cannot be stopped; `quiesce`). */
  private wsPaused = false;
  /** Draining: no new requests are read or started; `quiesce` waits for the running ones. */
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  /** Last time output reached the peer's side (a write completed) or the output was idle. */
  private lastProgress = Date.now();
  private readonly busyAt: number;
  private readonly progressed = (): void => {
    this.lastProgress = Date.now();
  };

  constructor(
    readonly ws: WebSocket,
    readonly ip: string,
    private readonly limits: ConnectionLimits,
    heartbeatMs: number,
    private readonly onClose: (conn: Connection, reason: CloseReason | 'client') => void,
    /** The upgraded TCP socket under `ws` (what ws writes to); shared frames are written to it directly. */
    private readonly raw?: RawSocket,
  ) {
    this.heartbeatMs = heartbeatMs;
    this.lastSeen = Date.now();
    this.busyAt = Math.floor(limits.maxBuffered / 4);
    this.maxSends = limits.maxSendsInflight;
    this.raw?.on('drain', this.drained);
  }

  /** Bytes waiting to reach the peer: queued here plus unsent in the socket. */
  outputBytes(): number {
    return this.queuedBytes + this.socketBytes();
  }

  /**
   * Bytes handed to the socket and not yet sent: ws's bufferedAmount, read from the socket
   * itself when we write to it (ws adds its sender's own queue, which stays empty without
   * compression — see writeRaw).
   */
  private socketBytes(): number {
    return this.raw ? this.raw.writableLength + this.directPending : this.ws.bufferedAmount;
  }

  /** Bytes of direct writes (writeDirect) that wait in libuv, not yet taken by the kernel. */
  private directPending = 0;

  /**
   * The socket took everything handed to it (the stream's 'drain', or the last direct write
   * through): progress; the queue goes on and so do requests held back by the output (pump).
   */
  private readonly drained = (): void => {
    this.lastProgress = Date.now();
    this.flush();
  };

  /**
   * A direct write that had to wait in libuv is through (`status` 0) or failed: its bytes no
   * longer count as unsent, that is progress, and once none wait the socket has drained.
   * @internal
   */
  directWritten(bytes: number, status: number): void {
    this.directPending -= bytes;
    if (status < 0) {
      (this.raw as unknown as { destroy?: (e: Error) => void }).destroy?.(new Error(`write failed (${status})`));
      return;
    }
    if (this.directPending === 0) this.drained();
    else this.lastProgress = Date.now();
  }

  /**
   * Queue a frame. `urgent` (the answer to a request, e.g. a send's ACK): this connection is
   * flushed at the start of the next flush callback, ahead of the connections queued for a
   * fan-out (see `urgent` above), with what it has queued before (its order is kept).
   */
  send(frame: Queued, urgent_ = false): void {
    if (!this.enqueue(frame, textOf(frame).length)) return;
    if (urgent_ && !this.urgentQueued) {
      this.urgentQueued = true;
      urgent.push(this);
      scheduleFlush();
    }
  }

  /**
   * Queue a frame of `bytes` and put the connection in the flush list; false when it is closed
   * (before, or now as a slow consumer). `wall` (Date.now()) and `at` (performance.now()) are
   * read here unless the caller read them once for many connections (sendShared).
   */
  private enqueue(frame: Queued, bytes: number, wall?: number, at?: number): boolean {
    if (this.closed) return false;
    const socketBytes = this.socketBytes();
    if (this.queue.length === 0 && socketBytes === 0) this.lastProgress = wall ?? Date.now();
    this.queue.push(frame);
    this.queuedBytes += bytes;
    if (this.queuedBytes + socketBytes > this.limits.maxBuffered) {
      this.close('slow_consumer');
      return false;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.dirtyAt = at ?? performance.now();
      dirty.push(this);
      scheduleFlush();
    }
    return true;
  }

  /**
   * Handle a request now, or when a slot frees and the output has room. The task calls its
   * `done` exactly once, when it has finished, and never throws (the gateway answers errors itself).
   */
  submit(task: ConnectionTask): void {
    if (this.closed || this.draining) return;
    // A frame read while reads are paused: from now on the socket waits in the kernel.
    if (this.stopOnNextFrame) this.holdReads();
    if (task.overtakes === true && this.waitingOther === 0 && this.backlogHead < this.backlog.length) {
      // Only sends wait: the ACK goes ahead of them (ConnectionTask.overtakes).
      this.inflight++;
      task.run(this.taskDone);
      return;
    }
    this.backlog.push(task);
    if (task.budgeted !== true) this.waitingOther++;
    this.pump();
  }

  /** Start waiting requests while there is room (also called by the send budget once it has room again). */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const sends = this.limits.sends;
    try {
      const maxSends = this.maxSends;
      while (!this.closed && this.backlogHead < this.backlog.length && this.outputBytes() < this.busyAt) {
        const task = this.backlog[this.backlogHead]!;
        const send = task.budgeted === true;
        // The head waits for its own window (sends, or the other requests); nothing behind it
        // goes first: frames start in arrival order.
        if (send && maxSends !== undefined) {
          if (this.inflightSends >= maxSends) break;
        } else if (this.inflight - this.inflightSends >= this.limits.maxInflight) break;
        // A send beyond the node's budget waits here, unstarted (the budget pumps this connection again).
        const budgeted = sends !== undefined && send;
        if (budgeted && !sends.take(this)) break;
        this.backlog[this.backlogHead++] = undefined as unknown as ConnectionTask;
        if (!send) this.waitingOther--;
        this.inflight++;
        if (send && maxSends !== undefined) this.inflightSends++;
        task.run(budgeted ? this.budgetedDone : send && maxSends !== undefined ? this.sendDone : this.taskDone);
      }
    } finally {
      this.pumping = false;
    }
    if (this.backlogHead === this.backlog.length) {
      if (this.backlogHead > 0) {
        this.backlog.length = 0;
        this.backlogHead = 0;
      }
    } else if (this.backlogHead > 1024) {
      this.backlog.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
    if (this.draining) return;
    // Stop reading while requests wait: the client's further frames stay in TCP buffers.
    const wait = this.backlogHead < this.backlog.length && !this.closed;
    if (wait === this.readPaused) return;
    this.readPaused = wait;
    if (wait) {
      // A plain TCP socket is stopped at its handle, once the next frame arrives
      // (stopOnNextFrame); anything else is paused in ws at once.
      if (stoppable(this.raw)) this.stopOnNextFrame = true;
      else this.holdReads();
    } else {
      // Read again: the client's silence while this server held its socket unread says nothing about it.
      this.lastSeen = Date.now();
      this.releaseReads();
    }
  }

  /**
   * Stop reading now: a plain TCP socket at its handle — no data reaches its stream, which
   * is left flowing (pausing and resuming it cost a pause event and three nextTick
   * callbacks — resume_, emitReadable_, maybeReadMore_ — per wait, ~5 % of an overloaded
   * open loop's event loop); anything else is paused in ws.
   */
  private holdReads(): void {
    this.stopOnNextFrame = false;
    if (this.readStopped || this.wsPaused) return;
    this.readStopped = stopReading(this.raw);
    if (!this.readStopped) {
      this.wsPaused = true;
      this.ws.pause();
    }
  }

  /** Resume reading: the socket's handle if stopReading stopped it, ws if this connection paused it. */
  private releaseReads(): void {
    this.stopOnNextFrame = false;
    if (this.readStopped) {
      this.readStopped = false;
      startReading(this.raw);
    }
    if (this.wsPaused) {
      this.wsPaused = false;
      this.ws.resume();
    }
  }

  /**
   * Stop reading and starting requests (frames not started yet were never acknowledged: the
   * client sends them again elsewhere) and resolve once the running ones have answered, or
   * after `timeoutMs`. Their answers (a send's ACK after its commit) are queued before the close.
   */
  quiesce(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.backlog = [];
    this.backlogHead = 0;
    this.waitingOther = 0;
    if (!this.readPaused) {
      this.readPaused = true;
      this.wsPaused = true;
      this.ws.pause();
    } else if (this.stopOnNextFrame) this.holdReads();
    if (this.inflight === 0 || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      t.unref();
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * `send` of a fan-out's shared frame (never urgent), with the fan-out's clock readings taken
   * once for all its followers (`wall`: Date.now(), `at`: performance.now()) instead of per
   * follower: a 5 000-follower fan-out queues 5 000 of these in one go.
   */
  sendShared(frame: SharedFrame, wall: number, at: number): void {
    this.enqueue(frame, frame.text.length, wall, at);
  }

  /**
   * Its turn in the `urgent` list: write what is queued now. It keeps its place in `dirty`
   * (if it has one), where it finds its queue empty or holding only what came since.
   */
  flushUrgent(): void {
    this.urgentQueued = false;
    const scheduled = this.scheduled;
    this.flush();
    // Still in `dirty` (its entry there is consumed later): not queued a second time meanwhile.
    if (scheduled && !this.closed) this.scheduled = true;
  }

  /** Write queued frames while the socket has room (all of them when `force`). */
  flush(force = false): void {
    this.scheduled = false;
    if (this.closed) return;
    if (this.socketBytes() === 0) this.lastProgress = Date.now();
    while (this.queue.length > 0 && (force || this.socketBytes() < this.busyAt)) this.writeSome();
    if (this.backlogHead < this.backlog.length) this.pump();
  }

  /** Write the frames at the head of the queue: one, or (batching) up to BATCH_BYTES of them as one array. */
  private writeSome(): void {
    const first = this.queue[0]!;
    if (this.queue.length === 1) {
      // The usual case (one fan-out frame, or one answer): no new arrays.
      this.queue.pop();
      this.queuedBytes -= textOf(first).length;
      if (!this.writeRaw(first)) this.ws.send(textOf(first), this.progressed);
      return;
    }
    let n = 1;
    let bytes = textOf(first).length;
    if (this.batching) {
      while (n < this.queue.length && bytes + textOf(this.queue[n]!).length <= BATCH_BYTES) bytes += textOf(this.queue[n++]!).length;
    }
    const frames = this.queue.length === n ? this.queue : this.queue.slice(0, n);
    this.queue = this.queue.length === n ? [] : this.queue.slice(n);
    this.queuedBytes -= bytes;
    if (n > 1) {
      const shared = sharedBatches && frames.every((f) => f instanceof SharedFrame) ? sharedBatchOf(sharedBatches, frames as SharedFrame[]) : undefined;
      const text = shared ? shared.text : `[${frames.map(textOf).join(',')}]`;
      if (!this.writeRaw(shared ?? text)) this.ws.send(text, this.progressed);
    } else if (!this.writeRaw(first instanceof SharedFrame ? first : textOf(first))) this.ws.send(textOf(first), this.progressed);
  }

  /**
   * Write a frame's bytes straight to the socket, in one write (ws's send frames a string
   * into a header and a payload buffer and writes both, corked, as a writev). Equivalent to
   * ws's own send here: the server never masks, permessage-deflate is off, and ws's sender
   * queues nothing without compression; socketBytes() counts the unsent bytes either way
   * (the stream's and, for writeDirect, libuv's). False when the socket is not open (the
   * caller falls back to ws).
   */
  private writeRaw(frame: SharedFrame | string): boolean {
    const socket = this.raw;
    if (this.ws.readyState !== 1 || !socket?.writable) return false;
    const bytes = typeof frame === 'string' ? textFrame(frame) : frame.bytes();
    if (this.writeDirect(socket, bytes)) return true;
    if (socket.writableLength > 0) {
      // Queued behind earlier output: its completion is progress.
      socket.write(bytes, this.progressed);
      return true;
    }
    // Onto an idle socket, without a callback: a write the kernel takes at once then costs no
    // callback tick (the usual case: one such write per connection per fan-out). If part of
    // it waits, an empty write behind it reports when it is through.
    socket.write(bytes);
    if (socket.writableLength === 0) this.lastProgress = Date.now();
    else socket.write(NO_BYTES, this.progressed);
    return true;
  }

  /**
   * Write `bytes` straight to the socket's libuv handle, as net.Socket's own write does at its
   * end (`writeBuffer`: libuv tries the write at once and queues what the kernel did not
   * take, in order behind anything queued before), without the stream's machinery around it
   * (Writable state, a nextTick per write, the socket's timer refresh: ~a third of the
   * JavaScript a fan-out spends per socket). Only when the stream holds nothing of its own
   * (`writableLength` 0), so nothing it buffered can be overtaken; what the kernel did not
   * take counts in `directPending` (the output bound, stalled) until libuv reports it
   * through. False (nothing written): not a plain TCP socket with a handle, the binding is
   * missing, or the stream holds output — the caller writes through the stream.
   */
  private writeDirect(socket: RawSocket, bytes: Buffer): boolean {
    if (!directWrites.enabled || socket.writableLength > 0) return false;
    const s = socket as unknown as { _handle?: WriteHandle | null; encrypted?: boolean; writableCorked?: number; connecting?: boolean };
    const handle = s._handle;
    if (!handle || typeof handle.writeBuffer !== 'function' || s.encrypted || s.connecting || s.writableCorked) return false;
    const req = spareReq ?? new streamWrap!.WriteWrap();
    spareReq = req;
    const err = handle.writeBuffer(req, bytes);
    if (err !== 0) {
      // Nothing or part of it written and the socket is broken: end it as Node would. The
      // request is not reused (the binding may have wrapped it before failing).
      spareReq = undefined;
      (socket as unknown as { destroy(e: Error): void }).destroy(new Error(`write failed (${err})`));
      return true;
    }
    if (streamWrap!.streamBaseState[streamWrap!.kLastWriteWasAsync]) {
      // The rest waits in libuv: this request is now libuv's until directWriteDone.
      spareReq = undefined;
      req.handle = handle;
      req.buffer = bytes;
      req.conn = this;
      req.oncomplete = directWriteDone;
      this.directPending += bytes.length;
    } else this.lastProgress = Date.now();
    return true;
  }

  /**
   * Output has waited `stallMs` without any of it reaching the peer. Frames that only wait
   * for this server's flush list (the socket is idle, the connection's turn has not come:
   * the server is behind, not the peer) do not count.
   */
  stalled(now: number): boolean {
    if (this.closed || now - this.lastProgress <= this.limits.stallMs) return false;
    const socketBytes = this.socketBytes();
    return socketBytes > 0 || (this.queuedBytes > 0 && !this.scheduled);
  }

  /** Open, and heard from within two heartbeat intervals. */
  isAlive(): boolean {
    return !this.closed && this.heardFrom(Date.now());
  }

  /**
   * Heard from within two heartbeat intervals, or its socket is held unread by this server
   * (requests waiting for a slot or for the node's send budget): its frames, pings included,
   * then wait in our buffers, and its silence says nothing about the client.
   */
  heardFrom(now: number): boolean {
    return (this.readPaused && !this.draining) || now - this.lastSeen <= 2 * this.heartbeatMs;
  }

  /**
   * Its socket is held unread by this server (requests wait for a slot, for room in the
   * output, or for the node's send budget): what the client sent since, ACKs included, waits
   * in our buffers behind them. The retry queue holds its due retries meanwhile.
   */
  heldUnread(): boolean {
    return this.readPaused && !this.draining && !this.closed;
  }

  /** Count an invalid frame; true when the client has sent too many in the window. */
  countError(limit: number, windowMs: number): boolean {
    const now = Date.now();
    if (now - this.errorWindowStart > windowMs) {
      this.errorWindowStart = now;
      this.errorCount = 0;
    }
    return ++this.errorCount > limit;
  }

  /**
   * Close with a typed code. Queued frames (e.g. a `kicked` notice) are written first, except
   * for a slow consumer: its queue is dropped so the close frame comes right after what the
   * socket holds, and it gets `stallMs` (at least 2 s) to read that far.
   */
  close(reason: CloseReason, message?: string): void {
    if (this.closed) return;
    const slow = reason === 'slow_consumer';
    if (!slow) this.flush(true);
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.backlog = [];
    this.backlogHead = 0;
    this.waitingOther = 0;
    if (this.readPaused) {
      // Read again so the peer's close frame is seen; its other frames are ignored now.
      this.readPaused = false;
      this.releaseReads();
    }
    const { code, text } = CloseCodes[reason];
    this.onClose(this, reason);
    try {
      this.ws.close(code, (message ?? text).slice(0, 120));
    } catch {
      this.ws.terminate();
    }
    // A peer that never answers the close handshake must not hold the socket.
    setTimeout(() => this.ws.terminate(), slow ? Math.max(2000, this.limits.stallMs) : 2000).unref();
  }

  /** The socket closed from the other side. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.backlog = [];
    this.backlogHead = 0;
    this.waitingOther = 0;
    this.onClose(this, 'client');
  }
}
