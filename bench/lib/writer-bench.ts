/**
 * Shared set-up of the in-process writer benches (bench/writer-thread-cpu.ts,
 * bench/first-message-cpu.ts): a checkout's compiled server loaded through its public entry
 * point (bench/lib/tree.mjs), a SQLite store with the writer thread and search documents on, U
 * users, and per-thread CPU from /proc.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importFromTree } from './tree.mjs';

/** The bench users' ids: `bu0000000`, `bu0000001`, … (sorted as numbered). */
export const benchUid = (i: number): string => `bu${String(i).padStart(7, '0')}`;

/** `@magpie/server` of the checkout at `root`, a SQLite store on a fresh directory with the writer thread, and `users` users. */
export async function openWriterBench(root: string, prefix: string, users: number): Promise<{ server: any; store: any; dir: string }> {
  const server = await importFromTree(root, '@magpie/server');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await server.openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: 5000, writerThread: true, searchText: server.searchableText });
  for (let i = 0; i < users; i++) await store.createUser({ id: benchUid(i), username: benchUid(i), passwordHash: 'x', nickname: 'x', createdAt: Date.now() });
  return { server, store, dir };
}

/** utime+stime (clock ticks, 10 ms) per thread id of this process. */
export function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of readdirSync('/proc/self/task')) {
    const f = readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ');
    out.set(t, Number(f[11]) + Number(f[12]));
  }
  return out;
}
