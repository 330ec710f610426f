/**
 * Static-file and health latency during a login flood (issue 13). Starts the real server
 * twice: with the bounded scrypt pool (`auth.hashConcurrency` default 2) and with it set to
 * 64 (what unbounded async scrypt amounted to before). Each run: latency of GET /index.html
 * (fs.readFile: libuv's thread pool, like scrypt) and /api/health while `--clients`
 * closed-loop clients post wrong logins for unknown names (a dummy-hash scrypt each).
 *
 *   node --import tsx bench/login-flood.ts [--clients 64] [--seconds 8]
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.ts';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '64' }, seconds: { type: 'string', default: '8' } } });
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

async function timed(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url);
  await r.arrayBuffer();
  return performance.now() - t0;
}

async function probe(base: string, until: () => boolean): Promise<{ file: number[]; health: number[] }> {
  const file: number[] = [];
  const health: number[] = [];
  while (!until()) {
    file.push(await timed(`${base}/index.html`));
    health.push(await timed(`${base}/api/health`));
    await new Promise((r) => setTimeout(r, 50));
  }
  return { file, health };
}

async function run(hashConcurrency: number): Promise<void> {
  const srv = await startServer({
    env: {
      MAGPIE_HASH_CONCURRENCY: String(hashConcurrency),
      MAGPIE_HASH_QUEUE: '100000',
      MAGPIE_IP_RATE: '1000000',
      MAGPIE_IP_BURST: '1000000',
      MAGPIE_IP_LOGIN_FAILURES_PER_MIN: '100000000',
      MAGPIE_IP_LOGIN_FAILURE_BURST: '100000000',
    },
  });
  try {
    // Warm-up: the password policy's dictionaries load just after start; first requests compile routes.
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 5; i++) await Promise.all([timed(`${srv.url}/index.html`), timed(`${srv.url}/api/health`)]);
    const quietEnd = Date.now() + 3000;
    const quiet = await probe(srv.url, () => Date.now() > quietEnd);
    let logins = 0;
    const answers = new Map<number, number>();
    const floodEnd = Date.now() + SECONDS * 1000;
    const flood = Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < floodEnd) {
        const r = await fetch(`${srv.url}/api/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: `nobody${randomBytes(6).toString('hex')}`, password: 'guess guess 1', deviceId: 'x', platform: 'web' }),
        });
        await r.arrayBuffer();
        answers.set(r.status, (answers.get(r.status) ?? 0) + 1);
        logins++;
      }
    });
    const loaded = await probe(srv.url, () => Date.now() > floodEnd);
    await Promise.all(flood);
    const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (n=${xs.length})`;
    console.log(`hashConcurrency=${hashConcurrency}: ${(logins / SECONDS).toFixed(0)} logins/s answered ${JSON.stringify(Object.fromEntries(answers))}`);
    console.log(`  quiet  /index.html ${fmt(quiet.file)}; /api/health ${fmt(quiet.health)}`);
    console.log(`  flood  /index.html ${fmt(loaded.file)}; /api/health ${fmt(loaded.health)}`);
  } finally {
    await srv.stop();
  }
}

await run(2);
await run(64);
