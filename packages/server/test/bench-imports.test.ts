import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * bench/ measures Magpie through its public entry points only: the server's exported API
 * (@magpie/server and its ./testing export), the SDK, the protocol; never a package's
 * internals by path (a bench that reaches into src/ breaks with every refactoring and measures
 * code no user runs).
 */
const ROOT = new URL('../../../', import.meta.url).pathname;
const PUBLIC = new Set(['@magpie/server', '@magpie/server/testing', '@magpie/sdk', '@magpie/protocol']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : files(p);
    return /\.(ts|mts|mjs|js)$/.test(name) ? [p] : [];
  });
}

/** Every module specifier of a file: static imports and exports, dynamic import('…') with a literal. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

it('bench/ imports Magpie only through its public entry points', () => {
  const bench = join(ROOT, 'bench');
  const all = files(bench);
  assert.ok(all.length >= 20, `found the bench files (${all.length})`);
  const bad: string[] = [];
  for (const f of all) {
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      const where = `${relative(ROOT, f)}: ${s}`;
      if (s.startsWith('@magpie/') && !PUBLIC.has(s)) bad.push(where);
      // Relative imports stay inside bench/ (its own helpers), never into packages/.
      if (s.startsWith('.') && relative(bench, join(f, '..', s)).startsWith('..')) bad.push(where);
    }
  }
  assert.deepEqual(bad, []);
});

/** A file's text without its comments (block and line comments; good enough for bench/'s code). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

it('bench/ names no module file inside a package (a computed import path would dodge the check above)', () => {
  const bench = join(ROOT, 'bench');
  const bad: string[] = [];
  for (const f of files(bench)) {
    // A string or template literal naming a file under packages/<name>/(src|dist)/. Allowed: the
    // server's process entry (main.js / main.ts), which benches start as a child process.
    for (const m of code(readFileSync(f, 'utf8')).matchAll(/packages\/[a-z-]+\/(?:src|dist)\/[\w./-]*\.(?:js|mjs|ts)\b/g)) {
      if (/packages\/server\/(?:dist\/main\.js|src\/main\.ts)$/.test(m[0])) continue;
      bad.push(`${relative(ROOT, f)}: ${m[0]}`);
    }
  }
  assert.deepEqual(bad, []);
});
