/**
 * Setup shared by the group benches (bench/group-fanout.ts, bench/super-group-100k.ts):
 * seeding users and sessions straight into the server's SqliteStore, starting the real
 * server as a child process, making groups through the REST API, and reading row counts.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { hashToken, openStore } from '@magpie/server';
import { machineBusyMs } from './proc.ts';
import { benchToken, benchUserId } from './users.ts';
import { ensureBuilt, ROOT, SERVER_MAIN, seedConfig, serverEnv, serverExecArgv, logServerReady } from './server.ts';


export const log = (s: string): void => console.log(`[bench] ${s}`);
export const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
export const mb = (bytes: number): string => `${fmt(bytes / 1024 / 1024, 1)} MB`;

/**
 * Users [from, to) with one session token each (benchToken(nonce, i)), written through the
 * server's public Store API (@magpie/server openStore) before the server starts: no scrypt per
 * user, and no fsync per row (synchronous=normal while seeding).
 */
export async function seedUsers(dbPath: string, from: number, to: number, nonce: string): Promise<void> {
  ensureBuilt();
  const store = await openStore(seedConfig(dirname(dbPath), { ringCapacity: 5000 }));
  const now = Date.now();
  const one = (i: number): Promise<unknown>[] => {
    const id = benchUserId(i);
    return [
      store.createUser({ id, username: id, passwordHash: 'bench-no-login', nickname: id, createdAt: now }),
      store.createSession({ tokenHash: hashToken(benchToken(nonce, i)), userId: id, deviceId: 'bench', platform: 'other', appVersion: 'bench', createdAt: now, expiresAt: now + 7 * 24 * 3600 * 1000 }),
    ];
  };
  for (let lo = from; lo < to; lo += 10_000) {
    const hi = Math.min(to, lo + 10_000);
    const pending: Promise<unknown>[] = [];
    for (let i = lo; i < hi; i++) pending.push(...one(i));
    await Promise.all(pending);
  }
  await store.close();
}

export interface BenchServer {
  url: string;
  wsUrl: string;
  pid: number;
  proc: ChildProcess;
  /** Seconds from fork to ready (to place a load window inside a CPU profile). */
  forkedAt: number;
  stop(): Promise<void>;
}

/** The real server as a child process on a free port, rate limits raised (the load is the point). */
export async function startBenchServer(opts: { dataDir: string; env?: Record<string, string>; cpuProfDir?: string; launchEnv?: boolean }): Promise<BenchServer> {
  const env: Record<string, string> = {
    MAGPIE_PORT: '0',
    MAGPIE_HOST: '127.0.0.1',
    MAGPIE_DATA_DIR: opts.dataDir,
    MAGPIE_LOG_LEVEL: 'warn',
    MAGPIE_USER_RATE: '1000000',
    MAGPIE_USER_BURST: '1000000',
    MAGPIE_IP_RATE: '1000000',
    MAGPIE_IP_BURST: '1000000',
    MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
    ...opts.env,
  };
  ensureBuilt();
  // The server's launch flags (packages/server/launch.json), then MAGPIE_BENCH_SERVER_EXEC_ARGV.
  const execArgv: string[] = serverExecArgv();
  if (opts.cpuProfDir) {
    mkdirSync(resolve(opts.cpuProfDir), { recursive: true });
    execArgv.unshift('--cpu-prof', '--cpu-prof-dir', resolve(opts.cpuProfDir));
  }
  return forkBenchProcess(SERVER_MAIN, { execArgv, env: serverEnv(env, { launchEnv: opts.launchEnv !== false }), cwd: ROOT, what: 'server' });
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

/**
 * A group of user `owner` plus `others` through the REST API: create with up to 999 of them,
 * then invite the rest in chunks of 1000 (the API's largest). Returns the conv id.
 */
export async function makeGroup(base: string, ownerToken: string, name: string, others: string[], onChunk?: (members: number) => void): Promise<string> {
  const created = await api(base, 'POST', '/api/groups', { name, members: others.slice(0, 999) }, ownerToken);
  if (created.status !== 201) throw new Error(`create group: ${created.status} ${JSON.stringify(created.body)}`);
  const conv: string = created.body.group.conv;
  for (let k = 999; k < others.length; k += 1000) {
    const r = await api(base, 'POST', `/api/groups/${encodeURIComponent(conv)}/invite`, { users: others.slice(k, k + 1000) }, ownerToken);
    if (r.status !== 200) throw new Error(`invite: ${r.status} ${JSON.stringify(r.body)}`);
    onChunk?.(Math.min(others.length, k + 1000) + 1);
  }
  return conv;
}

export async function groupInfo(base: string, token: string, conv: string): Promise<{ kind: string; memberCount: number; lastSeq: number }> {
  const r = await api(base, 'GET', `/api/groups/${encodeURIComponent(conv)}`, undefined, token);
  if (r.status !== 200) throw new Error(`group info: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.group;
}

export interface RowCounts {
  messages: number;
  inbox: number;
  entries: number;
  members: number;
}

/** Row counts of the tables that could grow per message, read from the server's SQLite file (WAL: a concurrent reader). */
export function rowCounts(dbPath: string, conv?: string): RowCounts {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const n = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;
    return {
      messages: n('SELECT COUNT(*) AS n FROM messages'),
      inbox: n('SELECT COUNT(*) AS n FROM inbox'),
      entries: n('SELECT COUNT(*) AS n FROM entries'),
      members: conv ? n('SELECT COUNT(*) AS n FROM members WHERE conv_id = ? AND left_seq IS NULL', conv) : n('SELECT COUNT(*) AS n FROM members WHERE left_seq IS NULL'),
    };
  } finally {
    db.close();
  }
}

export function rowDelta(a: RowCounts, b: RowCounts): RowCounts {
  return { messages: b.messages - a.messages, inbox: b.inbox - a.inbox, entries: b.entries - a.entries, members: b.members - a.members };
}

/** The machine's load average and how busy its CPUs were over the last second (others may share it). */
export async function machineLoad(): Promise<string> {
  const b0 = machineBusyMs();
  await sleep(1000);
  const busy = (machineBusyMs() - b0) / 10;
  let up = '';
  try {
    up = execFileSync('uptime', { encoding: 'utf8' }).trim().replace(/^.*load/, 'load');
  } catch {
    up = 'load average unknown';
  }
  return `${up}; CPUs busy ${fmt(busy, 0)}% of one core in the last second before the run`;
}

export function gitDescribe(): string {
  try {
    const rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages/server/src', 'packages/protocol/src'], { encoding: 'utf8' }).trim();
    return `${rev}${dirty ? ' + uncommitted changes in packages/server|protocol' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** User and system CPU time of a process in ms (/proc/<pid>/stat): loopback TCP work done in write() shows as system time. */
export function cpuSplitOf(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/**
 * The machine is shared (2 cores): wait up to `maxS` seconds until other processes use less
 * than 15% of a core for 5 s in a row. Returns false when it never got that quiet.
 */
export async function waitQuiet(maxS: number): Promise<boolean> {
  if (!(maxS > 0)) return true;
  const until = Date.now() + maxS * 1000;
  let quiet = 0;
  while (Date.now() < until) {
    const b0 = machineBusyMs();
    await sleep(1000);
    quiet = (machineBusyMs() - b0) / 10 < 15 ? quiet + 1 : 0;
    if (quiet >= 5) return true;
  }
  log(`machine not quiet after ${maxS} s; measuring anyway (see the load figures)`);
  return false;
}

/**
 * Fork a bench child process (the server, or bench/lib/bare-relay.mjs) that sends `{ ready: url }`
 * over IPC once it listens; its handle stops it with SIGTERM (waiting up to 15 s).
 */
export async function forkBenchProcess(modulePath: string | URL, opts: { execArgv: string[]; env?: NodeJS.ProcessEnv; cwd?: string; what: string }): Promise<BenchServer> {
  const forkedAt = Date.now();
  const proc = fork(modulePath, [], { execArgv: opts.execArgv, ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${opts.what} did not start in 30 s`)), 30_000);
    proc.on('message', (m: { ready?: string; heapSizeLimit?: number; maxSemiSpaceSizeMiB?: number | null }) => {
      if (m.ready) {
        clearTimeout(t);
        if (opts.what === 'server') logServerReady(m);
        res(m.ready.replace('localhost', '127.0.0.1'));
      }
    });
    proc.on('exit', (code) => rej(new Error(`${opts.what} exited early (${code})`)));
  });
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/ws`,
    pid: proc.pid!,
    proc,
    forkedAt,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
    },
  };
}
