import type { WebSocket } from 'ws';
import { CloseCodes, type CloseReason } from '@magpie/protocol';
import type { Principal } from '../services/accounts.ts';
import { ObtainedTracker } from './obtained.ts';

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
 * One text frame written to many connections (a super-group `advanced` fan-out): the
 * WebSocket frame bytes — header and UTF-8 payload — are built once, on first use, and the
 * same Buffer is written to every connection that has nothing else queued. `ws.send(string)`
 * would measure, frame, cork and encode the payload again for each of the 5 000 followers.
 */
export class SharedFrame {
  private wire: Buffer | undefined;

  constructor(readonly text: string) {}

  /** The complete unmasked server→client text frame (RFC 6455 §5.2). */
  bytes(): Buffer {
    if (this.wire) return this.wire;
    const payload = Buffer.from(this.text, 'utf8');
    const n = payload.length;
    const header = Buffer.allocUnsafe(n < 126 ? 2 : n < 65_536 ? 4 : 10);
    header[0] = 0x81; // FIN + text opcode
    if (n < 126) header[1] = n;
    else if (n < 65_536) {
      header[1] = 126;
      header.writeUInt16BE(n, 2);
    } else {
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(n), 2);
    }
    this.wire = Buffer.concat([header, payload]);
    return this.wire;
  }
}

type Queued = string | SharedFrame;

const textOf = (f: Queued): string => (typeof f === 'string' ? f : f.text);

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
  /** What of its inbox this device was given here (its ACKs raise delivered state only that far). */
  readonly obtained = new ObtainedTracker();
  closed = false;
  private queue: Queued[] = [];
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

  send(frame: Queued): void {
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
    const only = q.length === 1 ? q[0]! : undefined;
    if (only instanceof SharedFrame && !this.writeRaw(only)) this.ws.send(only.text);
    else if (typeof only === 'string') this.ws.send(only);
    else if (only === undefined && this.batching) this.ws.send(`[${q.map(textOf).join(',')}]`);
    else if (only === undefined) for (const f of q) this.ws.send(textOf(f));
    if (this.ws.bufferedAmount > this.maxBuffered) this.close('slow_consumer');
  }

  /**
   * Write a shared frame's bytes straight to the socket. Equivalent to ws's own send here:
   * the server never masks, permessage-deflate is off, and ws's sender queues nothing
   * without compression. False when the socket is not open (the caller falls back to ws).
   */
  private writeRaw(frame: SharedFrame): boolean {
    const socket = (this.ws as unknown as { _socket?: { writable: boolean; write(b: Buffer): boolean } })._socket;
    if (this.ws.readyState !== 1 || !socket?.writable) return false;
    socket.write(frame.bytes());
    return true;
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
