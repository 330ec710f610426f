import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { MagpieError } from '@magpie/protocol';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.ico': 'image/x-icon',
};

/** Serve the built web client (packages/web/dist) at /, with index.html for client routes. */
export function registerWebClient(app: FastifyInstance): void {
  const dist = new URL('../../../web/dist/', import.meta.url).pathname;
  app.get('/*', async (req, reply) => {
    if (req.url.startsWith('/api/')) throw new MagpieError('not_found', 'no such route');
    const path = normalize(decodeURIComponent(req.url.split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist)) return reply.code(404).send();
    if (existsSync(file) && extname(file)) {
      void reply.header('content-type', TYPES[extname(file)] ?? 'application/octet-stream');
      if (path.startsWith('/assets/')) void reply.header('cache-control', 'public, max-age=31536000, immutable');
      return reply.send(await readFile(file));
    }
    const index = join(dist, 'index.html');
    if (existsSync(index)) return reply.header('content-type', TYPES['.html']).send(await readFile(index));
    return reply
      .header('content-type', TYPES['.html'])
      .send('<!doctype html><title>Magpie</title><h1>Magpie is running</h1><p>The web client is not built. API at /api, WebSocket at /ws, metrics at /metrics.</p>');
  });
}
