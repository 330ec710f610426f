#!/usr/bin/env node
// Prints the web client's bundle size: raw, gzip and brotli bytes of each JS/CSS file of
// packages/web/dist/assets (the .gz/.br files the build writes, which the server sends).
//   npm run build:web && node scripts/bundle-size.mjs
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../packages/web/dist/assets/', import.meta.url).pathname;
if (!existsSync(dir)) {
  console.error('bundle-size: packages/web/dist is not built (npm run build:web)');
  process.exit(1);
}
const size = (p) => (existsSync(p) ? statSync(p).size : NaN);
const kb = (n) => (Number.isNaN(n) ? '—' : `${(n / 1024).toFixed(1)} KiB`);
const rows = readdirSync(dir)
  .filter((f) => /\.(js|css)$/.test(f))
  .map((f) => ({ f, raw: size(join(dir, f)), gz: size(join(dir, f + '.gz')), br: size(join(dir, f + '.br')) }));
const total = rows.reduce((t, r) => ({ raw: t.raw + r.raw, gz: t.gz + r.gz, br: t.br + r.br }), { raw: 0, gz: 0, br: 0 });
console.log('| file | raw | gzip -9 | brotli -11 |\n|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.f.replace(/-[\w-]{8}\./, '-[hash].')} | ${kb(r.raw)} | ${kb(r.gz)} | ${kb(r.br)} |`);
console.log(`| **total** | ${kb(total.raw)} | ${kb(total.gz)} | ${kb(total.br)} |`);
