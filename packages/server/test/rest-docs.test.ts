/**
 * Every REST route the server registers is documented (issue 13: the red-packet and wallet
 * API was missing from docs/protocol.md; issue 16: one reference for every route). Routes are
 * collected from fastify's onRoute hook (`MagpieServer.routes`), so a new route without docs
 * fails here: each must be in docs/protocol.md and in the OpenAPI document with its schemas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';

const docs = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

/** `METHOD /path` as written in backticks in a document (query and body left out). */
function documented(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/`(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/[^\s`?{]*)/g)) out.add(`${m[1]} ${m[2]}`);
  return out;
}

describe('docs list every REST route the server registers', () => {
  let dir: string;
  let server: MagpieServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-routes-'));
    server = await createMagpieServer(loadConfig({}, { dataDir: dir, logLevel: 'silent', adminToken: 'a'.repeat(32) }));
    await server.http.ready();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const api = () => server.routes.filter((r) => r.url.startsWith('/api/')).map((r) => `${r.method} ${r.url}`);

  it('the hook saw the routes', () => {
    assert.ok(api().length > 50, `${api().length} routes`);
    assert.ok(api().includes('POST /api/redpackets/:id/open'));
  });

  it('wallet and red-packet routes are in docs/protocol.md', () => {
    const inProtocol = documented(docs('protocol.md'));
    const missing = api().filter((r) => /\/(redpackets|wallet|reconcile)/.test(r) && !inProtocol.has(r));
    assert.deepEqual(missing, []);
  });

  it('every /api route is in docs/protocol.md', () => {
    const inDocs = documented(docs('protocol.md'));
    assert.deepEqual(api().filter((r) => !inDocs.has(r)), []);
  });

  it('every /api route is in the OpenAPI document with its schemas', async () => {
    const res = await server.http.inject({ method: 'GET', url: '/api/docs/openapi.json' });
    const doc = res.json() as { paths: Record<string, Record<string, { 'x-magpie-unschematized'?: boolean; responses?: Record<string, unknown> }>> };
    const missing = api().filter((r) => {
      const [method, url] = r.split(' ') as [string, string];
      const op = doc.paths[url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[method.toLowerCase()];
      return !op || op['x-magpie-unschematized'] || !Object.keys(op.responses ?? {}).some((s) => /^[23]/.test(s));
    });
    assert.deepEqual(missing, []);
  });
});
