/**
 * What every benchmark needs from the server, through its public entry points only: the
 * compiled node (`packages/server/dist/main.js`, what `npm start` runs) and `@magpie/server`'s
 * exported API for seeding (openStore, openPushStore, …). The build is refreshed first when a
 * source file is newer than it, so a benchmark never measures stale code.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig, type Config } from '@magpie/server';

export const ROOT = new URL('../..', import.meta.url).pathname;
/** The production server, as `npm start` runs it. */
export const SERVER_MAIN = join(ROOT, 'packages/server/dist/main.js');

let built = false;
/** `npm run build` when a package's sources are newer than its dist/ (no-op otherwise). */
export function ensureBuilt(): void {
  if (built) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('bench: the build failed (npm run build)');
  built = true;
}

/**
 * Environment for a forked server: the caller's, minus a "magpie-source" condition (the
 * compiled server must load compiled packages), plus `env`.
 */
export function serverEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--conditions[= ]magpie-source/g, '').trim();
  return { ...process.env, NODE_OPTIONS: nodeOptions, ...env };
}

/** Settings for seeding a bench database in `dataDir` before the server starts (no fsync per row). */
export function seedConfig(dataDir: string, overrides: Record<string, unknown> = {}): Config {
  return loadConfig({}, { dataDir, sqliteSynchronous: 'normal', ...overrides });
}
