import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { ServerFrame } from '@magpie/protocol';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

export interface ServerProcess {
  url: string;
  wsUrl: string;
  dataDir: string;
  proc: ChildProcess;
  /** Kill with a signal and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stop and remove the data dir (unless keepData). */
  stop(): Promise<void>;
}

/** Start the real server as a child process on a free port. */
export async function startServer(opts: { env?: Record<string, string>; dataDir?: string; keepData?: boolean; startTimeoutMs?: number } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'magpie-e2e-'));
  const proc = fork(MAIN, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const limit = opts.startTimeoutMs ?? 60_000;
    const t = setTimeout(() => reject(new Error(`server did not start in ${limit / 1000} s`)), limit);
    proc.on('message', (m: { ready?: string }) => {
      if (m.ready) {
        clearTimeout(t);
        resolve(m.ready.replace('localhost', '127.0.0.1'));
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return {
    url,
    wsUrl: url.replace('http', 'ws') + '/ws',
    dataDir,
    proc,
    kill,
    async stop() {
      await kill('SIGTERM');
      if (!opts.keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function uniqueName(prefix = 'u'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

export async function api<T = any>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export interface Account {
  userId: string;
  username: string;
  token: string;
  deviceId: string;
}

export async function registerAndLogin(base: string, opts: { username?: string; deviceId?: string; platform?: string } = {}): Promise<Account> {
  const username = opts.username ?? uniqueName();
  const reg = await api(base, 'POST', '/api/register', { username, password: 'correct horse' });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register failed: ${JSON.stringify(reg.body)}`);
  return login(base, username, opts.deviceId ?? 'dev1', opts.platform ?? 'web');
}

export async function login(base: string, username: string, deviceId: string, platform = 'web'): Promise<Account> {
  const r = await api(base, 'POST', '/api/login', { username, password: 'correct horse', deviceId, platform });
  if (r.status !== 200) throw new Error(`login failed: ${JSON.stringify(r.body)}`);
  return { userId: r.body.userId, username, token: r.body.token, deviceId };
}

/**
 * A raw protocol client: speaks frames directly (no SDK) so tests see exactly what the
 * server sends. Every server frame is validated against the protocol schema.
 */
export class RawClient {
  readonly frames: any[] = [];
  readonly schemaErrors: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private nextId = 100;
  private waiters: { pred: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  private closeWaiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const parsed = JSON.parse(data.toString());
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) this.onFrame(f);
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.closeWaiters) w();
    });
  }

  static async open(wsUrl: string): Promise<RawClient> {
    const ws = new WebSocket(wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }

  /** Open and authenticate; returns the welcome result. */
  static async connect(wsUrl: string, token: string, inboxSeq = 0): Promise<{ client: RawClient; welcome: any }> {
    const client = await RawClient.open(wsUrl);
    const welcome = await client.request({ type: 'hello', versions: [1], token, inboxSeq, caps: ['ack', 'batch'] });
    return { client, welcome };
  }

  private onFrame(f: any): void {
    const check = ServerFrame.safeParse(f);
    if (!check.success) this.schemaErrors.push(`${JSON.stringify(f).slice(0, 200)}: ${check.error.message}`);
    this.frames.push(f);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(f)) return true;
      w.resolve(f);
      return false;
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Wait for a frame matching `pred` (including ones already received after `from`). */
  waitFor(pred: (f: any) => boolean, timeoutMs = 5000, from = 0): Promise<any> {
    const seen = this.frames.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for frame; last: ${JSON.stringify(this.frames.slice(-3))}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
      });
    });
  }

  /** Send a request and resolve with its reply's result; rejects with the error frame. */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
    const id = this.nextId++;
    const from = this.frames.length;
    this.send({ ...frame, id });
    const f = await this.waitFor((x) => (x.type === 'reply' || x.type === 'error') && x.id === id, timeoutMs, from);
    if (f.type === 'error') throw Object.assign(new Error(`${f.code}: ${f.message}`), { frame: f });
    return f.result;
  }

  /** Request expecting an error frame; resolves with it. */
  async requestError(frame: Record<string, unknown>): Promise<any> {
    try {
      await this.request(frame);
    } catch (err) {
      const f = (err as { frame?: unknown }).frame;
      if (f) return f;
      throw err;
    }
    throw new Error('expected an error reply');
  }

  /** Every `msg` frame received, repeats included. */
  messages(): any[] {
    return this.frames.filter((f) => f.type === 'msg');
  }

  /**
   * Each message's first arrival, in arrival order. A raw client that does not ACK gets the
   * server's retries under load (the same frame again), so counts and orders of messages are
   * taken from here, not from the raw frames.
   */
  firstArrivals(): any[] {
    const seen = new Set<string>();
    return this.messages().filter((f) => !seen.has(f.message.id) && (seen.add(f.message.id), true));
  }

  waitClose(timeoutMs = 5000): Promise<void> {
    if (this.closeCode !== undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Pull the whole inbox after `since` with `sync` pages. */
export async function pullAll(c: RawClient, since: number): Promise<{ items: any[]; inboxSeq: number; full: boolean }> {
  const items: any[] = [];
  let cursor = since;
  for (;;) {
    const page = await c.request({ type: 'sync', since: cursor });
    if (page.full) return { items, inboxSeq: page.inboxSeq, full: true };
    items.push(...page.items);
    cursor = page.items.at(-1)?.inboxSeq ?? cursor;
    if (!page.more) return { items, inboxSeq: page.inboxSeq, full: false };
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The clients a multi-node test connects (to any node), closed together at its end, which also
 * checks that every frame they received matched the wire schema.
 */
export class ClientSet {
  readonly all: RawClient[] = [];

  async connect(node: { wsUrl: string }, who: { token: string }): Promise<RawClient> {
    const { client } = await RawClient.connect(node.wsUrl, who.token);
    this.all.push(client);
    return client;
  }

  /** Close every client; throws (after closing them) when a received frame broke the wire schema. */
  closeChecked(): void {
    const errors = this.all.flatMap((c) => c.schemaErrors);
    for (const c of this.all) c.close();
    if (errors.length > 0) throw new Error(`frames that broke the wire schema: ${JSON.stringify(errors)}`);
  }
}
