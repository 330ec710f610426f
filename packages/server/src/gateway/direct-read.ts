import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/**
 * Reading a WebSocket's plain TCP socket without the stream machinery around ws's parser
 * (the receive side of Connection.writeDirect).
 *
 * What Node and ws do per socket read today: libuv calls the handle's `onread`
 * (stream_base_commons' onStreamRead), which wraps the bytes in a Buffer and pushes it into
 * the socket's Readable; the Readable emits 'data' (and schedules a `maybeReadMore` tick);
 * ws's listener writes the chunk to its Receiver, a Writable (writeOrBuffer, then an
 * `afterWrite` tick); the Receiver's `_write` parses the frames and emits them. Installed on a
 * connection, `onread` hands the chunk straight to the Receiver's `_write` — the same parser,
 * with its handling of fragmentation, control frames, close, UTF-8 validation and maxPayload —
 * whenever the two streams in between are idle and would pass the chunk straight through
 * themselves: the socket flowing with nothing buffered, its 'data' going to ws alone, no
 * socket timeout to refresh, and the Receiver with nothing buffered, not writing, not ended,
 * errored or destroyed. Anything else (a paused socket — ws.pause(), the head of the upgrade
 * still buffered —, end of stream, a read error, a Receiver that has concluded or failed)
 * goes through Node's own onread, so the streams keep their order and their state; once they
 * are idle again the next read is direct. Pausing at the handle (Connection's stopReading:
 * `readStop`) is untouched: no `onread` comes while the handle is stopped.
 *
 * A parse error (a frame over maxPayload, bad UTF-8, a protocol violation) destroys the
 * Receiver with it, as Writable does for an error passed to `_write`'s callback: ws then
 * closes with the error's status code and emits 'error', as before.
 *
 * Installed only where all of that holds: a plain TCP socket (TLS keeps its own path),
 * Node's own onStreamRead on the handle and no user buffer (`onread` socket option), the
 * stream_wrap binding present, ws's Receiver with synchronous events and no extension
 * (permessage-deflate is off), so that `_write` always calls back before returning.
 */

interface ReadBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}
const binding: ReadBinding | undefined = (() => {
  try {
    const b = (process as unknown as { binding(name: string): Partial<ReadBinding> }).binding('stream_wrap');
    if (b.streamBaseState && typeof b.kReadBytesOrError === 'number' && typeof b.kArrayBufferOffset === 'number') return b as ReadBinding;
  } catch {
    // not available: every read goes through the socket's stream
  }
  return undefined;
})();

/**
 * `enabled`: set to false to leave every new connection on the stream path (tests compare the
 * two). `chunks`: socket reads handed straight to a Receiver since the process started.
 * @internal
 */
export const directReads = { enabled: binding !== undefined && process.env.MAGPIE_DIRECT_READS !== '0', chunks: 0 };

/** Buffer's own constructor of views over an ArrayBuffer (what onStreamRead and ws use). */
const FastBuffer = (Buffer as unknown as { [Symbol.species]: new (ab: ArrayBuffer, offset: number, length: number) => Buffer })[Symbol.species];

interface WritableStateLike {
  length: number;
  writing: boolean;
  ending: boolean;
  destroyed: boolean;
  errored: unknown;
  corked: number;
}
interface ReceiverLike {
  _write(chunk: Buffer, encoding: string, cb: (err?: Error | null) => void): void;
  _writableState?: WritableStateLike;
  _allowSynchronousEvents?: boolean;
  _extensions?: Record<string, unknown>;
  destroy(err: Error): void;
}
interface ReadableStateLike {
  flowing: boolean | null;
  length: number;
  destroyed: boolean;
}
interface SocketLike {
  encrypted?: boolean;
  timeout?: number;
  _handle?: ReadHandle | null;
  _readableState?: ReadableStateLike;
  _events?: { data?: unknown };
}
interface ReadHandle {
  onread?: ((this: ReadHandle, ab: ArrayBuffer) => unknown) | undefined;
  readStop?: () => number;
}

/**
 * Set on a socket whose reads readDirect took over. Only on such a socket does stopping its
 * handle hold (Connection's stopReading): on the stream path Node's Readable schedules a
 * `maybeReadMore` tick after every chunk it emits, and that tick's `read(0)` calls the socket's
 * `_read`, which starts a stopped handle again — a stop made while a frame is handled (always,
 * with `stopOnNextFrame`) was undone one tick later, and the client's frames went on piling up
 * in the connection's backlog. Such sockets are paused in ws instead (Node then stops the
 * handle itself once 16 KB wait in the stream).
 * @internal
 */
export const kReadsDirect = Symbol('magpie.readsDirect');

/** True when readDirect took over this socket's reads (its handle can be stopped: see kReadsDirect). */
export function readsDirect(socket: unknown): boolean {
  return (socket as { [kReadsDirect]?: boolean } | undefined)?.[kReadsDirect] === true;
}

/** net.Socket's `kBuffer` symbol (the `onread` socket option's buffer), found on the first socket. */
let kBuffer: symbol | null | undefined;

/**
 * Make the socket's reads go straight to ws's Receiver while the streams in between are idle
 * (see above). Call right after ws took the socket (its 'data' listener is in place). False
 * when not installed: the connection reads through the streams as ws set it up.
 */
export function readDirect(ws: WebSocket, socket: Duplex): boolean {
  if (!directReads.enabled || binding === undefined) return false;
  const s = socket as unknown as SocketLike;
  const handle = s._handle;
  const rs = s._readableState;
  if (s.encrypted || s.timeout || !handle || !rs || typeof handle.onread !== 'function' || handle.onread.name !== 'onStreamRead' || typeof handle.readStop !== 'function') return false;
  if (kBuffer === undefined) kBuffer = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'kBuffer') ?? null;
  if (kBuffer === null || (socket as unknown as Record<symbol, unknown>)[kBuffer] != null) return false;
  const receiver = (ws as unknown as { _receiver?: ReceiverLike })._receiver;
  const wstate = receiver?._writableState;
  if (!receiver || !wstate || typeof receiver._write !== 'function' || receiver._allowSynchronousEvents !== true) return false;
  if (receiver._extensions && Object.keys(receiver._extensions).length > 0) return false;
  const listeners = socket.listeners('data');
  if (listeners.length !== 1 || s._events?.data !== listeners[0]) return false;
  const onData = listeners[0];
  const streamRead = handle.onread;
  const { streamBaseState: state, kReadBytesOrError, kArrayBufferOffset } = binding;
  const failed = (err?: Error | null): void => {
    if (err) receiver.destroy(err);
  };
  handle.onread = function (this: ReadHandle, ab: ArrayBuffer): unknown {
    const nread = state[kReadBytesOrError]!;
    if (
      nread > 0 &&
      rs.flowing === true &&
      rs.length === 0 &&
      !rs.destroyed &&
      !s.timeout &&
      s._events!.data === onData &&
      wstate.length === 0 &&
      !wstate.writing &&
      !wstate.ending &&
      !wstate.destroyed &&
      !wstate.errored &&
      !wstate.corked
    ) {
      directReads.chunks++;
      receiver._write(new FastBuffer(ab, state[kArrayBufferOffset]!, nread), 'buffer', failed);
      return undefined;
    }
    return streamRead.call(this, ab);
  };
  (socket as unknown as { [kReadsDirect]: boolean })[kReadsDirect] = true;
  return true;
}
