#!/usr/bin/env node
// Builds the web client (packages/web → packages/web/dist, served by the server at /).
//   node scripts/build-web.mjs               build
//   node scripts/build-web.mjs --if-missing  build only when dist/index.html is missing (npm start)
//   node scripts/build-web.mjs --if-stale    build when a source file is newer than the build (tests)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const web = join(root, 'packages/web');
const index = join(web, 'dist/index.html');
const mode = process.argv[2] ?? '';

function newest(dir, t = 0) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return t;
  }
  for (const n of names) {
    if (n === 'node_modules' || n === 'dist') continue;
    const p = join(dir, n);
    const s = statSync(p);
    t = s.isDirectory() ? newest(p, t) : Math.max(t, s.mtimeMs);
  }
  return t;
}

if (mode === '--if-missing' && existsSync(index)) process.exit(0);
if (mode === '--if-stale' && existsSync(index)) {
  const sources = Math.max(newest(join(web, 'src')), newest(join(web, 'public')), statSync(join(web, 'index.html')).mtimeMs, newest(join(root, 'packages/sdk/src')));
  if (sources <= statSync(index).mtimeMs) process.exit(0);
}

let viteBin;
try {
  const req = createRequire(join(web, 'package.json'));
  viteBin = join(req.resolve('vite/package.json'), '..', 'bin/vite.js');
} catch {
  console.warn('build-web: vite is not installed (run `npm install`); the server will run without the web client');
  process.exit(0);
}
console.log('build-web: building packages/web …');
const r = spawnSync(process.execPath, [viteBin, 'build', '--logLevel', 'warn'], { cwd: web, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build-web: the web client build failed');
  process.exit(r.status ?? 1);
}
console.log('build-web: done (packages/web/dist)');
