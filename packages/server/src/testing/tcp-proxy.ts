import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ProxyBackend {
  host: string;
  port: number;
}

export interface TcpProxyOptions {
  backends: ProxyBackend[];
  /** Poll each backend's `GET <healthPath>` this often; a non-200 answer takes it out of rotation (as HAProxy's `option httpchk`). */
  healthPath?: string;
  healthIntervalMs?: number;
}

/**
 * A small TCP load balancer for tests and benchmarks: round-robin over the backends that
 * passed their last health check, and on a refused connect the next one (HAProxy's
 * `redispatch`). Bytes are piped untouched, so HTTP and WebSocket both go through.
 */
export class TcpProxy {
  private readonly server: Server;
  private next = 0;
  private readonly healthy: boolean[];
  private readonly open: Set<Socket>[];
  private timer: NodeJS.Timeout | undefined;
  /** Connections accepted per backend since start. */
  readonly accepted: number[];

  constructor(private readonly opts: TcpProxyOptions) {
    this.healthy = opts.backends.map(() => true);
    this.open = opts.backends.map(() => new Set());
    this.accepted = opts.backends.map(() => 0);
    this.server = createServer((client) => this.route(client, 0));
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((r) => this.server.listen(port, host, r));
    if (this.opts.healthPath) {
      await this.checkAll();
      this.timer = setInterval(() => void this.checkAll(), this.opts.healthIntervalMs ?? 200);
      this.timer.unref();
    }
    const a = this.server.address() as AddressInfo;
    return `http://${host}:${a.port}`;
  }

  /** Connections open now through each backend. */
  openCounts(): number[] {
    return this.open.map((s) => s.size);
  }

  isHealthy(i: number): boolean {
    return this.healthy[i]!;
  }

  private pick(): number {
    const n = this.opts.backends.length;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      if (this.healthy[i]) {
        this.next = i + 1;
        return i;
      }
    }
    return this.next++ % n;
  }

  private route(client: Socket, tries: number): void {
    client.pause();
    const i = this.pick();
    const b = this.opts.backends[i]!;
    const upstream = connect(b.port, b.host);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.accepted[i]!++;
      this.open[i]!.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    const done = () => {
      this.open[i]!.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', () => {
      if (!connected) {
        this.healthy[i] = false;
        upstream.destroy();
        if (tries + 1 < this.opts.backends.length * 2) this.route(client, tries + 1);
        else client.destroy();
        return;
      }
      done();
    });
    upstream.on('close', () => connected && done());
    client.on('error', done);
    client.on('close', () => connected && done());
  }

  private async checkAll(): Promise<void> {
    await Promise.all(
      this.opts.backends.map(async (b, i) => {
        try {
          const r = await fetch(`http://${b.host}:${b.port}${this.opts.healthPath}`, { signal: AbortSignal.timeout(1000) });
          await r.arrayBuffer();
          this.healthy[i] = r.status === 200;
        } catch {
          this.healthy[i] = false;
        }
      }),
    );
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const set of this.open) for (const s of set) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
