import type { WebSocket } from 'ws';
import { CloseCodes, type CloseReason } from '@magpie/protocol';
import type { Principal } from '../services/accounts.ts';

/**
 * Connections with queued frames, flushed together by one setImmediate per event-loop turn
 * (a fan-out to thousands of connections schedules one callback, not one per connection).
 */
let dirty: Connection[] = [];
let flushScheduled = false;

function flushDirty(): void {
  flushScheduled = false;
  const list = dirty;
  dirty = [];
  for (const conn of list) conn.flush();
}

/**
 * One client connection. Outgoing frames are queued and written once per event-loop turn:
 * several queued frames go out as one JSON array in one WebSocket message when the client
 * announced the `batch` capability. Output beyond `maxBuffered` bytes closes the connection
 * (slow consumer) instead of growing memory.
 */
export class Connection {
  principal: Principal | undefined;
  /** The client's announced heartbeat interval (ms). */
  heartbeatMs: number;
  lastSeen: number;
  batching = false;
  /** The client announced the `ack` capability: its deliveries are tracked for retry. */
  acks = false;
  closed = false;
  private queue: string[] = [];
  private scheduled = false;
  private errorCount = 0;
  private errorWindowStart = 0;

  constructor(
    readonly ws: WebSocket,
    readonly ip: string,
    private readonly maxBuffered: number,
    heartbeatMs: number,
    private readonly onClose: (conn: Connection, reason: CloseReason | 'client') => void,
  ) {
    this.heartbeatMs = heartbeatMs;
    this.lastSeen = Date.now();
  }

  send(frame: string): void {
    if (this.closed) return;
    this.queue.push(frame);
    if (!this.scheduled) {
      this.scheduled = true;
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushDirty);
      }
    }
  }

  /** Write queued frames now. */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    if (q.length === 1) this.ws.send(q[0]!);
    else if (this.batching) this.ws.send(`[${q.join(',')}]`);
    else for (const f of q) this.ws.send(f);
    if (this.ws.bufferedAmount > this.maxBuffered) this.close('slow_consumer');
  }

  /** Open, and heard from within two heartbeat intervals. */
  isAlive(): boolean {
    return !this.closed && Date.now() - this.lastSeen <= 2 * this.heartbeatMs;
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

  /** Close with a typed code; queued frames (e.g. a `kicked` notice) are flushed first. */
  close(reason: CloseReason, message?: string): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.queue = [];
    const { code, text } = CloseCodes[reason];
    this.onClose(this, reason);
    try {
      this.ws.close(code, (message ?? text).slice(0, 120));
    } catch {
      this.ws.terminate();
    }
    // A peer that never answers the close handshake must not hold the socket.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** The socket closed from the other side. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.onClose(this, 'client');
  }
}
