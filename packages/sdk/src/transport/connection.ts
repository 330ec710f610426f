import type { Clock, TimerHandle } from '../clock.ts';
import { MagpieClientError, type MagpieClientErrorCode } from '../errors.ts';
import { isErrorCode } from '../protocol-constants.ts';
import type { NotifyFrame, RequestFrame, RequestResults, RequestType } from '../wire.ts';
import { messageText, WS_OPEN, type WebSocketFactory, type WebSocketLike } from './websocket.ts';

/** A server frame as received: an object with a string `type`. */
export interface RawFrame {
  type: string;
  [key: string]: unknown;
}

export interface ConnectionHandlers {
  onOpen(): void;
  /** Every frame that is not the reply to a pending request (pongs are passed on as well). */
  onFrame(frame: RawFrame): void;
  /** The socket closed by itself (server or network). Not called after abandon() or close(). */
  onClose(info: { code: number; reason: string }): void;
  /** Text that is not a frame; the connection stays up. */
  onProtocolError?(err: MagpieClientError): void;
}

export interface ConnectionOptions {
  url: string;
  webSocketFactory: WebSocketFactory;
  clock: Clock;
  /** Default timeout of a request; each request may override it. */
  requestTimeoutMs: number;
  /** The socket's generation number; the owner uses it to ignore stale sockets. */
  generation: number;
  handlers: ConnectionHandlers;
}

interface Pending {
  type: string;
  sentAt: number;
  resolve(value: unknown): void;
  reject(err: MagpieClientError): void;
  timer: TimerHandle;
}

const MAX_ID = 2 ** 31;

/**
 * One WebSocket and its framing: JSON frames out; one frame or an array of frames in;
 * requests matched to replies by id, each with a timeout. When the socket goes away every
 * pending request fails with `disconnected`. After abandon() nothing from the socket is
 * processed any more, even if it still delivers data.
 */
export class Connection {
  readonly generation: number;
  private socket: WebSocketLike | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private done = false;
  private lastReceived = 0;

  constructor(private readonly opts: ConnectionOptions) {
    this.generation = opts.generation;
  }

  /** Create the socket. A factory that throws counts as a network close (reported asynchronously). */
  open(): void {
    if (this.socket || this.done) return;
    let socket: WebSocketLike;
    try {
      socket = this.opts.webSocketFactory(this.opts.url);
    } catch (err) {
      this.opts.clock.setTimeout(() => this.handleClose(1006, `cannot open socket: ${err instanceof Error ? err.message : String(err)}`), 0);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.done || this.socket !== socket) return;
      this.opts.handlers.onOpen();
    };
    socket.onmessage = (event: { data?: unknown }) => {
      if (this.done || this.socket !== socket) return;
      this.handleData(event?.data);
    };
    socket.onclose = (event: { code?: number; reason?: string }) => {
      if (this.done || this.socket !== socket) return;
      this.handleClose(typeof event?.code === 'number' ? event.code : 1006, typeof event?.reason === 'string' ? event.reason : '');
    };
    socket.onerror = () => {
      // An error is always followed by a close event; nothing to do here.
    };
  }

  /** The socket's TLS handshake time, when its factory measured it. */
  get tlsMs(): number | undefined {
    const t = this.socket?.tlsMs;
    return typeof t === 'number' ? t : undefined;
  }

  get isOpen(): boolean {
    return !this.done && this.socket !== null && this.socket.readyState === WS_OPEN;
  }

  get isDone(): boolean {
    return this.done;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** When anything last arrived on this socket (clock ms; 0 before the first data). */
  get lastReceivedAt(): number {
    return this.lastReceived;
  }

  /** When the oldest unanswered request (other than the given types) was sent; null when none waits. */
  oldestPendingSince(exceptTypes: readonly string[] = []): number | null {
    let oldest: number | null = null;
    for (const p of this.pending.values()) {
      if (exceptTypes.includes(p.type)) continue;
      if (oldest === null || p.sentAt < oldest) oldest = p.sentAt;
    }
    return oldest;
  }

  /** Send a request and wait for its reply (or error frame). */
  request<T extends RequestType>(frame: Extract<RequestFrame, { type: T }>, opts?: { timeoutMs?: number }): Promise<RequestResults[T]> {
    return new Promise<RequestResults[T]>((resolve, reject) => {
      if (!this.isOpen) {
        reject(new MagpieClientError(this.done ? 'disconnected' : 'not_connected', `cannot send ${frame.type}: the socket is not open`));
        return;
      }
      const id = this.nextId;
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
      const timeoutMs = opts?.timeoutMs ?? this.opts.requestTimeoutMs;
      const timer = this.opts.clock.setTimeout(() => {
        if (this.pending.delete(id)) reject(new MagpieClientError('timeout', `${frame.type} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { type: frame.type, sentAt: this.opts.clock.now(), resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.socket!.send(JSON.stringify({ ...frame, id }));
      } catch (err) {
        this.pending.delete(id);
        this.opts.clock.clearTimeout(timer);
        reject(new MagpieClientError('not_connected', `cannot send ${frame.type}: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** Send a frame that gets no reply. Returns false when it could not be written. */
  notify(frame: NotifyFrame): boolean {
    if (!this.isOpen) return false;
    try {
      this.socket!.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Give the socket up at once: stop listening, fail pending requests with `disconnected`
   * and start a close without waiting for it. onClose is not called.
   */
  abandon(reason = 'abandoned'): void {
    this.finish(reason, 4000);
  }

  /** Close on purpose (logout, client closed): like abandon, with a normal close code. */
  close(code = 1000, reason = 'client closed'): void {
    this.finish(reason, code);
  }

  private finish(reason: string, code: number): void {
    if (this.done) return;
    this.done = true;
    const socket = this.socket;
    this.detach();
    this.failPending(reason);
    if (socket) {
      try {
        socket.close(code, reason.slice(0, 100));
      } catch {
        // best effort: an abandoned socket may already be unusable
      }
    }
  }

  private detach(): void {
    const socket = this.socket;
    if (!socket) return;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
  }

  private failPending(reason: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      this.opts.clock.clearTimeout(p.timer);
      p.reject(new MagpieClientError('disconnected', `${p.type} failed: connection lost (${reason})`));
    }
  }

  private handleClose(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.failPending(`closed with ${code}${reason ? ` ${reason}` : ''}`);
    this.opts.handlers.onClose({ code, reason });
  }

  private handleData(data: unknown): void {
    this.lastReceived = this.opts.clock.now();
    const text = messageText(data);
    let parsed: unknown;
    try {
      if (text === null) throw new Error('binary or empty message');
      parsed = JSON.parse(text);
    } catch (err) {
      this.opts.handlers.onProtocolError?.(new MagpieClientError('bad_response', `unreadable frame: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    const frames = Array.isArray(parsed) ? parsed : [parsed];
    for (const f of frames) {
      // A handler may have abandoned or closed this connection: drop the rest of the batch.
      if (this.done) return;
      if (f === null || typeof f !== 'object' || typeof (f as RawFrame).type !== 'string') {
        this.opts.handlers.onProtocolError?.(new MagpieClientError('bad_response', 'a frame without a type'));
        continue;
      }
      this.dispatch(f as RawFrame);
    }
  }

  private dispatch(frame: RawFrame): void {
    const id = typeof frame.id === 'number' ? frame.id : undefined;
    if (frame.type === 'reply' || frame.type === 'error' || frame.type === 'pong') {
      const p = id !== undefined ? this.pending.get(id) : undefined;
      if (p) {
        this.pending.delete(id!);
        this.opts.clock.clearTimeout(p.timer);
        if (frame.type === 'error') p.reject(errorFromFrame(frame));
        else if (frame.type === 'pong') p.resolve(frame);
        else p.resolve(frame.result);
      }
      // Pongs are also state (the server's inboxSeq); unanswered errors are reported.
      if (frame.type === 'pong' || (frame.type === 'error' && !p)) this.opts.handlers.onFrame(frame);
      return;
    }
    this.opts.handlers.onFrame(frame);
  }
}

export function errorFromFrame(frame: RawFrame): MagpieClientError {
  // Codes of a newer server that the SDK does not know are passed on unchanged.
  const code = isErrorCode(frame.code) ? frame.code : typeof frame.code === 'string' && frame.code ? (frame.code as MagpieClientErrorCode) : 'bad_response';
  const message = typeof frame.message === 'string' ? frame.message : undefined;
  const extra: { details?: unknown; retryAfterMs?: number } = {};
  if (frame.details !== undefined) extra.details = frame.details;
  if (typeof frame.retryAfterMs === 'number') extra.retryAfterMs = frame.retryAfterMs;
  return new MagpieClientError(code, message, extra);
}
