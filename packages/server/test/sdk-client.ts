import WebSocket from 'ws';
import { MagpieClient, MemoryStore, type LocalStore, type WebSocketLike } from '@magpie/sdk';

/**
 * SDK clients for end-to-end tests: real sockets (the `ws` package), the real REST API,
 * an optional frame filter to emulate a lost downlink frame.
 */
export interface SdkClientOptions {
  baseUrl: string;
  token: string;
  store?: LocalStore;
  /** Return false to drop a server→client WebSocket message before the SDK sees it. */
  downlinkFilter?: (text: string) => boolean;
  heartbeatMs?: number;
}

class FilteredSocket {
  readonly ws: WebSocket;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(url: string, filter: (text: string) => boolean) {
    this.ws = new WebSocket(url);
    this.ws.onopen = (e) => this.onopen?.(e);
    this.ws.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
    this.ws.onerror = (e) => this.onerror?.(e);
    this.ws.onmessage = (e) => {
      const text = e.data.toString();
      if (filter(text)) this.onmessage?.({ data: text });
    };
  }
  get readyState(): number {
    return this.ws.readyState;
  }
  send(data: string): void {
    this.ws.send(data);
  }
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}

export function sdkClient(opts: SdkClientOptions): MagpieClient {
  const filter = opts.downlinkFilter;
  const hb = opts.heartbeatMs;
  return new MagpieClient({
    baseUrl: opts.baseUrl,
    token: opts.token,
    store: opts.store ?? new MemoryStore(),
    webSocketFactory: (url) => (filter ? (new FilteredSocket(url, filter) as unknown as WebSocketLike) : (new WebSocket(url) as unknown as WebSocketLike)),
    app: { platform: 'desktop', version: 'e2e' },
    ...(hb ? { heartbeat: { quickCount: 0, foregroundIntervalMs: hb, shortIntervalMs: hb, pongTimeoutMs: hb } } : {}),
  });
}

/** Resolve when `check` returns true, polling; fail with `what` after the timeout. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out: ${what}`);
}
