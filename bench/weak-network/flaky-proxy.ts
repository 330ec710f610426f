import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type RawData } from 'ws';

/** mulberry32: a small seeded PRNG so a loss pattern can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FlakyOptions {
  upstream: string;
  seed: number;
  /** Probability that a server→client WebSocket message is silently dropped. */
  downlinkDrop: number;
  /** Added latency per direction, ms: base + uniform jitter. */
  delayMs: number;
  jitterMs: number;
  /** Mean time between cuts of a connection (exponential), ms; 0 = never. */
  meanCutIntervalMs: number;
}

export interface ProxyStats {
  connections: number;
  cuts: number;
  downlinkMessages: number;
  downlinkDropped: number;
  /** Frames of type `msg` that were dropped, as (recipient connection index, inboxSeq). */
  droppedMsgFrames: number;
}

/**
 * A userspace WebSocket proxy that makes a weak network on a seeded schedule: it delays
 * both directions, drops server→client messages with a probability, and cuts connections
 * abruptly (both sockets destroyed without a close handshake). Each connection gets its own
 * PRNG derived from the seed and its index, so a run replays the same loss pattern.
 */
export class FlakyProxy {
  readonly stats: ProxyStats = { connections: 0, cuts: 0, downlinkMessages: 0, downlinkDropped: 0, droppedMsgFrames: 0 };
  /** Called for every dropped `msg` frame with its message id. */
  onDroppedMsg: (messageId: string, at: number) => void = () => {};
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly live = new Set<() => void>();

  constructor(private readonly opts: FlakyOptions) {
    this.http = createServer();
    this.wss = new WebSocketServer({ server: this.http, perMessageDeflate: false });
    this.wss.on('connection', (client, req) => this.relay(client, req.url ?? '/ws'));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', () => r()));
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  private relay(client: WebSocket, path: string): void {
    const index = this.stats.connections++;
    const rnd = seededRandom(this.opts.seed * 7919 + index);
    const upstream = new WebSocket(this.opts.upstream + path, { perMessageDeflate: false });
    const pendingUp: RawData[] = [];
    let cutTimer: NodeJS.Timeout | undefined;
    const cut = () => {
      this.stats.cuts++;
      kill();
    };
    const kill = () => {
      clearTimeout(cutTimer);
      this.live.delete(kill);
      client.terminate();
      upstream.terminate();
    };
    this.live.add(kill);
    if (this.opts.meanCutIntervalMs > 0) {
      const wait = -Math.log(1 - rnd()) * this.opts.meanCutIntervalMs;
      cutTimer = setTimeout(cut, wait);
    }
    const delay = () => this.opts.delayMs + rnd() * this.opts.jitterMs;
    // Per-direction FIFO with delay: a later message never overtakes an earlier one (TCP order).
    let upAt = 0;
    let downAt = 0;
    client.on('message', (data, isBinary) => {
      upAt = Math.max(upAt, Date.now() + delay());
      setTimeout(() => {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
        else if (upstream.readyState === WebSocket.CONNECTING) pendingUp.push(data);
      }, upAt - Date.now());
    });
    upstream.on('open', () => {
      for (const d of pendingUp.splice(0)) upstream.send(d, { binary: false });
    });
    upstream.on('message', (data, isBinary) => {
      this.stats.downlinkMessages++;
      if (rnd() < this.opts.downlinkDrop) {
        this.stats.downlinkDropped++;
        this.noteDropped(data.toString());
        return;
      }
      downAt = Math.max(downAt, Date.now() + delay());
      setTimeout(() => {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }, downAt - Date.now());
    });
    client.on('close', kill);
    upstream.on('close', kill);
    client.on('error', kill);
    upstream.on('error', kill);
  }

  private noteDropped(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    const now = Date.now();
    for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
      const frame = f as { type?: string; message?: { id?: string } };
      if (frame.type === 'msg' && frame.message?.id) {
        this.stats.droppedMsgFrames++;
        this.onDroppedMsg(frame.message.id, now);
      }
    }
  }

  async close(): Promise<void> {
    for (const k of [...this.live]) k();
    this.wss.close();
    await new Promise<void>((r) => this.http.close(() => r()));
  }
}
