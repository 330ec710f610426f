/**
 * The event loop's warm-up (loop-warmup.ts): a throwaway node on a private temporary SQLite
 * database serves loopback 1:1 traffic right after start; nothing of it reaches the real node
 * (database, data directory, metrics, connections), its temporary directory is deleted, and
 * it is off unless `loopWarmUp: true` / MAGPIE_LOOP_WARMUP=1.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createMagpieServer } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { warmUpConfig, warmUpEventLoop } from '../src/loop-warmup.ts';
import type { MagpieServer } from '../src/app.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

/** Rows of the real database that a message, user, session or upload would add. */
async function rowCounts(dataDir: string): Promise<Record<string, number>> {
  const e = new SqliteEngine(join(dataDir, 'magpie.db'), { synchronous: 'normal', checkpointMs: 0 });
  try {
    const out: Record<string, number> = {};
    for (const t of ['users', 'sessions', 'conversations', 'members', 'messages', 'inbox', 'entries', 'devices']) out[t] = (await e.get<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))!.n;
    // The real node's search index (its own file since migration 0025) holds no document either.
    const search = join(dataDir, 'magpie.search.db');
    if (existsSync(search)) {
      const s = new SqliteEngine(search, { synchronous: 'normal', checkpointMs: 0 });
      try {
        out.search_docs = (await s.get<{ n: number }>('SELECT count(*) AS n FROM search_docs'))!.n;
      } finally {
        await s.close();
      }
    }
    return out;
  } finally {
    await e.close();
  }
}

/** Every file under `dir` (relative), but the database's own files (the main file and the search index's file). */
function filesUnder(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...filesUnder(join(dir, e.name), `${prefix}${e.name}/`));
    else if (!/^magpie(\.search)?\.db(-wal|-shm)?$/.test(e.name)) out.push(prefix + e.name);
  }
  return out;
}

/** The warm-up's own directories under a temp dir (tsx keeps its cache there too). */
const warmUpDirs = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('magpie-loop-warmup-'));

const metricValue = async (s: MagpieServer, name: string) => (await s.metrics.registry.getSingleMetric(name)!.get()).values.reduce((a, v) => a + v.value, 0);

describe('event loop warm-up', () => {
  it('serves its messages on a throwaway node; the real node, its database, data directory and metrics see nothing; its temp dir is gone', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-lw-data-'));
    const privateTmp = mkdtempSync(join(tmpdir(), 'magpie-lw-tmp-'));
    const server = await createMagpieServer(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv, { dataDir, port: 0, host: '127.0.0.1', logLevel: 'silent' }));
    await server.start();
    const oldTmp = process.env.TMPDIR;
    let throwaway: MagpieServer | undefined;
    let tmpSeen: string[] = [];
    try {
      process.env.TMPDIR = privateTmp;
      const r = await warmUpEventLoop(server.config, createMagpieServer, {
        nodes: 1,
        clients: 6,
        rounds: 12,
        offlineUsers: 10,
        onNode: (n) => {
          throwaway = n;
          tmpSeen = warmUpDirs(privateTmp);
        },
      });
      assert.equal(r.ok, true, r.error);
      assert.equal(r.messages, 6 * 12 + 10);
      assert.ok(throwaway && throwaway !== server && throwaway.store !== server.store && throwaway.metrics.registry !== server.metrics.registry);
      // prom-client's process metrics start an event-loop delay monitor and a GC observer that live as long as the process: not for a throwaway node.
      assert.equal(throwaway.metrics.registry.getSingleMetric('magpie_process_nodejs_eventloop_lag_seconds'), undefined);
      assert.equal(throwaway.metrics.registry.getSingleMetric('magpie_process_nodejs_gc_duration_seconds'), undefined);
      assert.ok(server.metrics.registry.getSingleMetric('magpie_process_nodejs_eventloop_lag_seconds'), 'the real node keeps them');
      assert.equal(tmpSeen.length, 1, 'the throwaway node works in a directory of its own under the temp dir');
      assert.deepEqual(warmUpDirs(privateTmp), [], 'and it is deleted afterwards');
      for (const m of ['magpie_sends_total', 'magpie_deliveries_total', 'magpie_acks_total', 'magpie_syncs_total']) assert.equal(await metricValue(server, m), 0, m);
      assert.equal(await metricValue(server, 'magpie_connections'), 0);
    } finally {
      process.env.TMPDIR = oldTmp;
      if (oldTmp === undefined) delete process.env.TMPDIR;
      await server.stop();
    }
    try {
      const counts = await rowCounts(dataDir);
      for (const [t, n] of Object.entries(counts)) assert.equal(n, 0, `real database: ${t}`);
      assert.deepEqual(filesUnder(dataDir), []);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(privateTmp, { recursive: true, force: true });
    }
  });

  it('a PostgreSQL node’s warm-up still runs on private SQLite, without the operator’s integrations', () => {
    const real = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv, {
      store: 'postgres://magpie@127.0.0.1/magpie',
      nats: 'nats://127.0.0.1:4222',
      port: 8080,
      ringCapacity: 777,
      tracing: { otlpEndpoint: 'http://127.0.0.1:4318' },
      metrics: { port: 9100 },
    });
    const c = warmUpConfig(real, '/tmp/x');
    assert.equal(c.store, 'sqlite');
    assert.equal(c.dataDir, '/tmp/x');
    assert.equal(c.nats, undefined);
    assert.equal(c.port, 0);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.metrics.port, undefined);
    assert.equal((c.tracing as { otlpEndpoint?: string }).otlpEndpoint, undefined);
    assert.equal(c.console.enabled, false);
    assert.equal(c.ringCapacity, 777);
    assert.equal(c.logLevel, 'silent');
  });

  it('a failing warm-up reports it and never throws', async () => {
    const r = await warmUpEventLoop(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv), async () => {
      throw new Error('boom');
    });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'boom');
  });

  /** Starts the real entry point with an info log and a private temp dir; resolves once ready. */
  async function startNode(env: Record<string, string>) {
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-lw-proc-'));
    const privateTmp = mkdtempSync(join(tmpdir(), 'magpie-lw-ptmp-'));
    const proc = fork(MAIN, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, MAGPIE_CONFIG: '', MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'info', TMPDIR: privateTmp, ...env },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => proc.on('exit', () => r()));
    await new Promise<void>((res, rej) => {
      proc.on('message', (m: { ready?: string }) => m.ready && res());
      proc.on('exit', (code) => rej(new Error(`exited ${code}`)));
    });
    return {
      dataDir,
      privateTmp,
      output: () => out,
      async stop() {
        proc.kill('SIGTERM');
        await exited;
      },
      cleanup() {
        rmSync(dataDir, { recursive: true, force: true });
        rmSync(privateTmp, { recursive: true, force: true });
      },
    };
  }

  it('the server runs it after start and logs one line; the real database stays empty', async () => {
    const node = await startNode({ MAGPIE_LOOP_WARMUP: '1' });
    try {
      const deadline = Date.now() + 60_000;
      while (!/event loop warmed up/.test(node.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const line = node.output().split('\n').find((l) => l.includes('event loop warmed up'));
      assert.ok(line, 'the warm-up line');
      const rec = JSON.parse(line) as { level: number; ms: number; messages: number };
      assert.equal(rec.level, 30);
      assert.ok(rec.messages > 1000 && rec.ms > 0);
      await node.stop();
      for (const [t, n] of Object.entries(await rowCounts(node.dataDir))) assert.equal(n, 0, `real database: ${t}`);
      assert.deepEqual(filesUnder(node.dataDir), []);
      assert.deepEqual(warmUpDirs(node.privateTmp), []);
    } finally {
      await node.stop();
      node.cleanup();
    }
  });

  it('off by default (and with MAGPIE_LOOP_WARMUP=0)', async () => {
    const node = await startNode({});
    try {
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(warmUpDirs(node.privateTmp), [], 'no throwaway node directory');
      assert.doesNotMatch(node.output(), /warm-up|warmed up/);
    } finally {
      await node.stop();
      node.cleanup();
    }
  });

  it('a SIGTERM during the warm-up stops it and removes its directory', async () => {
    const node = await startNode({ MAGPIE_LOOP_WARMUP: '1' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await node.stop();
      assert.deepEqual(warmUpDirs(node.privateTmp), []);
      for (const [t, n] of Object.entries(await rowCounts(node.dataDir))) assert.equal(n, 0, `real database: ${t}`);
    } finally {
      node.cleanup();
    }
  });
});
