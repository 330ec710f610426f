/**
 * The WebSocket shape the SDK needs: the browser WebSocket API. The browser's own
 * `WebSocket` and the `ws` package's class both fit, e.g.
 * `webSocketFactory: (url) => new WebSocket(url)`.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // Handler parameters are `any` so both the DOM and the `ws` event types are accepted.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
  /**
   * TLS handshake time (ms), when the factory measured it (browsers cannot; in Node a factory
   * can time `secureConnect` through ws's `createConnection`): reported by connect telemetry.
   */
  readonly tlsMs?: number;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export const WS_CONNECTING = 0;
export const WS_OPEN = 1;
export const WS_CLOSING = 2;
export const WS_CLOSED = 3;

const decoder = /* @__PURE__ */ new TextDecoder();

/** The text of a message event's data (string, ArrayBuffer, typed array or a Node Buffer). */
export function messageText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return decoder.decode(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) return decoder.decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (Array.isArray(data) && data.every((d) => ArrayBuffer.isView(d))) return data.map((d) => messageText(d) ?? '').join('');
  return null;
}
