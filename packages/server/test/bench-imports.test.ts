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
