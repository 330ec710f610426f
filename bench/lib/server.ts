/**
 * What every benchmark needs from the server, through its public entry points only: the
 * compiled node (`packages/server/dist/main.js`, what `npm start` runs) and `@magpie/server`'s
 * exported API for seeding (openStore, openPushStore, …). The build is refreshed first when a
 * source file is newer than it, so a benchmark never measures stale code.
 */
import { fork, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig, type Config } from '@magpie/server';

export const ROOT = new URL('../..', import.meta.url).pathname;
/**
 * The production server, as `npm start` runs it: this checkout's, or another tree's compiled
 * server when MAGPIE_BENCH_SERVER_MAIN names one (bench/alternate.mjs --script-from: the same
 * bench and load generator against several commits' servers).
 */
export const SERVER_MAIN = process.env.MAGPIE_BENCH_SERVER_MAIN || join(ROOT, 'packages/server/dist/main.js');

let built = false;
/** `npm run build` when a package's sources are newer than its dist/ (no-op otherwise). */
export function ensureBuilt(): void {
  if (built) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('bench: the build failed (npm run build)');
  built = true;
}

/**
 * How the server under test is launched, from its own package: `packages/server/launch.json`
 * next to SERVER_MAIN's dist/ (what `npm start` and the Docker image use: node flags, and
 * environment defaults such as MALLOC_ARENA_MAX). Read from the commit under test, so
 * bench/alternate.mjs --same-bench compares each commit as it ships; a commit without the file
 * runs with no flags and no extra environment (as the benches did before it existed).
 */
export interface ServerLaunch {
  nodeArgs: string[];
  env: Record<string, string>;
  /** launch.json's path, or null when the server's commit has none. */
  file: string | null;
}

let launch: ServerLaunch | undefined;
export function serverLaunch(): ServerLaunch {
  if (launch) return launch;
  const file = join(dirname(SERVER_MAIN), '..', 'launch.json');
  if (!existsSync(file)) launch = { nodeArgs: [], env: {}, file: null };
  else {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { nodeArgs?: string[]; env?: Record<string, string> };
    launch = { nodeArgs: j.nodeArgs ?? [], env: j.env ?? {}, file };
  }
  const env = Object.entries(launch.env).map(([k, v]) => `${k}=${process.env[k] || v}`);
  const extra = process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV ? `; MAGPIE_BENCH_SERVER_EXEC_ARGV ${process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV}` : '';
  console.log(
    launch.file
      ? `server launch (${launch.file}): node ${[...launch.nodeArgs, ...env].join(' ') || '(nothing)'}${extra}`
      : `server launch: no packages/server/launch.json in this commit, node defaults${extra}`,
  );
  return launch;
}

/**
 * Print what a server said in its ready message about its young generation (servers since
 * launch.json report it; an older one says nothing), so a run's output shows how it ran.
 */
export function logServerReady(m: { heapSizeLimit?: number; maxSemiSpaceSizeMiB?: number | null }): void {
  if (m.heapSizeLimit === undefined) console.log('server reports: nothing about its heap (a commit before launch.json)');
  else console.log(`server reports: V8 young generation ${m.maxSemiSpaceSizeMiB == null ? "node's default" : `--max-semi-space-size=${m.maxSemiSpaceSizeMiB}`}, heap limit ${(m.heapSizeLimit / 2 ** 20).toFixed(0)} MiB`);
}

/**
 * Node flags for a forked server: its launch flags (serverLaunch), then
 * MAGPIE_BENCH_SERVER_EXEC_ARGV (extra flags for experiments, space-separated, e.g.
 * --trace-gc or --max-semi-space-size=16 to compare against the default), then `extra`.
 */
export function serverExecArgv(extra: string[] = []): string[] {
  return [...serverLaunch().nodeArgs, ...(process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean), ...extra];
}

/**
 * Environment for a forked server: the launch environment's defaults (serverLaunch; unless
 * `opts.launchEnv` is false), the caller's environment, minus a "magpie-source" condition (the
 * compiled server must load compiled packages), plus `env`.
 */
export function serverEnv(env: Record<string, string>, opts: { launchEnv?: boolean } = {}): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--conditions[= ]magpie-source/g, '').trim();
  const defaults: Record<string, string> = {};
  if (opts.launchEnv !== false) for (const [k, v] of Object.entries(serverLaunch().env)) if (!process.env[k]) defaults[k] = v;
  return { ...defaults, ...process.env, NODE_OPTIONS: nodeOptions, ...env };
}

/** Settings for seeding a bench database in `dataDir` before the server starts (no fsync per row). */
export function seedConfig(dataDir: string, overrides: Record<string, unknown> = {}): Config {
  return loadConfig({}, { dataDir, sqliteSynchronous: 'normal', ...overrides });
}

export interface BenchServer {
  url: string;
  wsUrl: string;
  dataDir: string;
  /** What the server reported when ready (servers since launch.json; undefined before). */
  heapSizeLimit?: number;
  maxSemiSpaceSizeMiB?: number | null;
  stop(): Promise<void>;
}

/**
 * Start the compiled server (`SERVER_MAIN`, built first if stale) on a free port of
 * 127.0.0.1 with its own data directory; resolves when it reports its URL.
 */
export async function startServer(opts: { env?: Record<string, string>; startTimeoutMs?: number } = {}): Promise<BenchServer> {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-'));
  const proc = fork(SERVER_MAIN, [], {
    execArgv: serverExecArgv(),
    env: serverEnv({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'warn', ...opts.env }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  type Ready = { ready?: string; heapSizeLimit?: number; maxSemiSpaceSizeMiB?: number | null };
  const ready = await new Promise<Ready>((resolve, reject) => {
    const limit = opts.startTimeoutMs ?? 60_000;
    const t = setTimeout(() => reject(new Error(`server did not start in ${limit / 1000} s`)), limit);
    proc.on('message', (m: Ready) => {
      if (!m.ready) return;
      clearTimeout(t);
      logServerReady(m);
      resolve(m);
    });
    proc.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
  const url = ready.ready!.replace('localhost', '127.0.0.1');
  return {
    url,
    ...(ready.heapSizeLimit !== undefined ? { heapSizeLimit: ready.heapSizeLimit, maxSemiSpaceSizeMiB: ready.maxSemiSpaceSizeMiB ?? null } : {}),
    wsUrl: `${url.replace('http', 'ws')}/ws`,
    dataDir,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface BenchAccount {
  userId: string;
  username: string;
  token: string;
  deviceId: string;
}

/** Register (or reuse) an account over the REST API and log one device in. */
export async function registerAndLogin(base: string, opts: { username: string; deviceId?: string; password?: string }): Promise<BenchAccount> {
  const password = opts.password ?? 'correct horse battery staple';
  const post = (path: string, body: unknown) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reg = await post('/api/register', { username: opts.username, password });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register failed: ${await reg.text()}`);
  const deviceId = opts.deviceId ?? 'dev1';
  const r = await post('/api/login', { username: opts.username, password, deviceId, platform: 'web' });
  if (r.status !== 200) throw new Error(`login failed: ${await r.text()}`);
  const b = (await r.json()) as { userId: string; token: string };
  return { userId: b.userId, username: opts.username, token: b.token, deviceId };
}
