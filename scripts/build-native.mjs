#!/usr/bin/env node
// Compiles the server's native SQLite extension (packages/server/native/walbuf.c, the WAL
// write-coalescing VFS) into packages/server/dist/native/walbuf.so with the machine's C
// compiler, against better-sqlite3's own sqlite3ext.h (the SQLite the server runs).
//   node scripts/build-native.mjs              build when missing or older than its source
//   node scripts/build-native.mjs --force      build always
// Never fails the build: without a compiler (or on a failed compile) it prints one warning and
// exits 0; the server then runs without the extension (store/sqlite-wal-coalesce.ts). Frame
// pointers kept: perf can walk a stack through the library (without them its frames break the chain).
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const source = join(root, 'packages/server/native/walbuf.c');
const out = join(root, 'packages/server/dist/native/walbuf.so');
const force = process.argv.includes('--force');

function warn(msg) {
  console.warn(`build-native: ${msg}; the server will run without SQLite WAL write coalescing`);
  process.exit(0);
}

if (process.platform === 'win32') warn('not built on Windows');
let headerDir;
try {
  headerDir = join(dirname(createRequire(join(root, 'package.json')).resolve('better-sqlite3/package.json')), 'deps/sqlite3');
} catch {
  warn('better-sqlite3 is not installed');
}
if (!existsSync(join(headerDir, 'sqlite3ext.h'))) warn(`no sqlite3ext.h in ${headerDir}`);
if (!force && existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-O2', '-fno-omit-frame-pointer', '-fPIC', '-shared', '-Wall', `-I${headerDir}`, source, '-o', tmp];
if (process.platform === 'darwin') args.splice(4, 0, '-undefined', 'dynamic_lookup');
const t0 = Date.now();
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error) warn(`no C compiler (${cc}: ${r.error.message})`);
if (r.status !== 0) warn(`${cc} failed:\n${r.stderr}`);
// Atomic: a server starting meanwhile loads the old library or the new one, never half of one.
renameSync(tmp, out);
console.log(`build-native: packages/server/native/walbuf.c -> dist/native/walbuf.so (${Date.now() - t0} ms)`);
