/**
 * Cost of the payment-PIN check on a red-packet send (wallet/payments/pin-service.ts): one
 * reserved try (an UPDATE … RETURNING), one read, one scrypt verify (N=16384, r=8, p=1, the
 * account-password parameters) and the reset of the count, on SQLite (synchronous=FULL).
 * Prints the latency of sequential checks and the throughput of concurrent ones at the
 * hasher's default concurrency, and the cost of a refused check while locked (no scrypt).
 *
 *   npm run bench:pin [-- --n 200 --concurrency 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { PasswordHasher, PinService, SqlPaymentsStore, loadConfig, openDatabase } from '@magpie/server';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('n', 200);
const CONC = arg('concurrency', 2);

const pct = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-pin-'));
const db = await openDatabase(loadConfig({}, { dataDir: dir, store: 'sqlite', sqliteSynchronous: 'full' }));
const store = new SqlPaymentsStore(db);
const hasher = new PasswordHasher({ concurrency: CONC, queue: 100_000 });
const accounts = { confirmPassword: async () => {} };
const pins = new PinService(store, hasher, accounts, { required: true, maxTries: 5, lockMs: 60_000 });
// One user per concurrent check: parallel checks of ONE user count as tries in flight (at most maxTries).
const users = Array.from({ length: N }, (_, i) => `u_bench_${i}`);
for (const u of users) await pins.set(u, '135790');

// Sequential: latency of one check.
const lat: number[] = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await pins.guard(users[i % users.length]!, '135790');
  lat.push(performance.now() - t);
}

// Concurrent: throughput with `CONC` scrypt runs at once (other users' checks queue).
const t0 = performance.now();
await Promise.all(Array.from({ length: N }, (_, i) => pins.guard(users[i % users.length]!, '135790')));
const concMs = performance.now() - t0;

// Locked: refused before any hash.
const locked = 'u_bench_locked';
await pins.set(locked, '135790');
for (let i = 0; i < 5; i++) await pins.verify(locked, '000000').catch(() => {});
const lockLat: number[] = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await pins.verify(locked, '135790').catch(() => {});
  lockLat.push(performance.now() - t);
}

console.log(`pin-check: n=${N}, hasher concurrency=${CONC}, cpus=${cpus().length}, SQLite synchronous=FULL`);
console.log(`  sequential right PIN: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms`);
console.log(`  concurrent right PIN: ${(N / (concMs / 1000)).toFixed(1)} checks/s (${concMs.toFixed(0)} ms for ${N})`);
console.log(`  locked PIN refused (no scrypt): p50 ${pct(lockLat, 50).toFixed(2)} ms, p99 ${pct(lockLat, 99).toFixed(2)} ms`);
await db.close();
rmSync(dir, { recursive: true, force: true });
