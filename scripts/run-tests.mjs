#!/usr/bin/env node
// Runs every *.test.ts under packages/*/{test,src} with node's test runner via tsx.
// Node 20 neither expands globs nor finds .ts files itself, so we list them here and
// fail when none are found (a run of zero tests is a failure).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

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
    stdio: ['inherit', 'pipe', 'inherit'],
    // Tests run from source: the "magpie-source" export condition resolves @magpie/* to src/*.ts,
    // in this process and in every server or worker process the tests fork.
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --conditions=magpie-source`.trim() },
  },
);

// The TAP stream passes through unchanged; the failing tests are repeated at the very end, with
// the first lines of their error, so a log that keeps only its tail still names what failed.
const failures = [];
let open = null; // the failure whose YAML block is being read
const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
lines.on('line', (line) => {
  process.stdout.write(`${line}\n`);
  const failed = /^(\s*)not ok \d+ - (.*)$/.exec(line);
  if (failed) {
    open = { indent: failed[1].length, name: failed[2], detail: [] };
    failures.push(open);
    return;
  }
  if (!open) return;
  const trimmed = line.trim();
  if (trimmed === '...' || /^(\s*)(not )?ok \d+ /.test(line) || trimmed.startsWith('# Subtest:')) {
    open = null;
  } else if (open.detail.length < 12 && trimmed !== '---' && !trimmed.startsWith('duration_ms:')) {
    open.detail.push(trimmed);
  }
});
child.on('exit', (code, signal) => {
  lines.close();
  // A suite that failed only because a subtest did adds nothing; the subtest is listed.
  const own = failures.filter((f) => !f.detail.some((d) => d.includes("failureType: 'subtestsFailed'")));
  if (own.length > 0) {
    console.log(`# run-tests: ${own.length} failing test${own.length === 1 ? '' : 's'}:`);
    for (const f of own) {
      console.log(`#   not ok - ${f.name}`);
      for (const d of f.detail) console.log(`#     ${d}`);
    }
  }
  process.exit(code ?? (signal ? 1 : 0));
});
