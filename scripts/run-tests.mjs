#!/usr/bin/env node
// Runs every *.test.ts under packages/*/{test,src} with node's test runner via tsx.
// Node 20 neither expands globs nor finds .ts files itself, so we list them here and
// fail when none are found (a run of zero tests is a failure).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv.slice(2);

function walk(dir, out) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  walk(join(root, 'packages', pkg, 'test'), files);
  walk(join(root, 'packages', pkg, 'src'), files);
}
const selected = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
console.log(`run-tests: ${selected.length} test files`);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...selected.map((f) => f.slice(root.length))],
  {
    cwd: root,
    stdio: 'inherit',
    // Tests run from source: the "magpie-source" export condition resolves @magpie/* to src/*.ts,
    // in this process and in every server or worker process the tests fork.
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --conditions=magpie-source`.trim() },
  },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
