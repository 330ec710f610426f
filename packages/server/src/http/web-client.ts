import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
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

/** Hashed build output: the name changes with the content, so it can be cached for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html and the service worker: always revalidated, so a new build is picked up at once. */
const REVALIDATE = 'no-cache';
/** Unhashed static files (icon, manifest): a day is fine. */
const SHORT = 'public, max-age=86400';

/** Encodings the build precompresses (packages/web/vite.config.ts writes `.br` and `.gz` beside each file). */
const ENCODINGS = [
  { name: 'br', ext: '.br' },
  { name: 'gzip', ext: '.gz' },
] as const;

/** The encodings an Accept-Encoding header allows (q=0 excludes one; `*` allows all). */
export function acceptedEncodings(header: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!header) return out;
  const all: string[] = [];
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const ok = !q || Number(q.slice(2)) > 0;
    if (name === '*') {
      if (ok) all.push(...ENCODINGS.map((e) => e.name));
    } else if (name && ok) out.add(name);
    else if (name) out.add(`!${name}`);
  }
  for (const n of all) if (!out.has(`!${n}`)) out.add(n);
  return out;
}

function cacheControl(path: string): string {
  if (path.startsWith('/assets/')) return IMMUTABLE;
  if (path === '/index.html' || path === '/sw.js') return REVALIDATE;
  return SHORT;
}

async function isFile(p: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const s = await stat(p);
    return s.isFile() ? s : null;
  } catch {
    return null;
  }
}

/**
 * Serve one file of the build: the precompressed variant the client accepts (brotli, then
 * gzip), a weak ETag for revalidation (304), and the cache policy of its kind.
 */
async function sendFile(reply: FastifyReply, file: string, path: string, acceptEncoding: string | undefined, ifNoneMatch: string | undefined): Promise<FastifyReply> {
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  const compressible = type.startsWith('text/') || type.includes('json') || type.includes('svg');
  const accepted = acceptedEncodings(acceptEncoding);
  let body = file;
  let encoding: string | null = null;
  if (compressible) {
    for (const e of ENCODINGS) {
      if (accepted.has(e.name) && (await isFile(file + e.ext))) {
        body = file + e.ext;
        encoding = e.name;
        break;
      }
    }
    void reply.header('vary', 'Accept-Encoding');
  }
  const s = await isFile(body);
  if (!s) return reply.code(404).send();
  const etag = `W/"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}${encoding ? `-${encoding}` : ''}"`;
  void reply.header('content-type', type).header('cache-control', cacheControl(path)).header('etag', etag);
  if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
  if (encoding) void reply.header('content-encoding', encoding);
  return reply.send(await readFile(body));
}

/**
 * Serve the built web client (packages/web/dist) at /, with index.html for client routes.
 * `dist` is for tests; the default is the workspace's build.
 */
export function registerWebClient(app: FastifyInstance, dist = new URL('../../../web/dist/', import.meta.url).pathname): void {
  app.get('/*', async (req, reply) => {
    if (req.url.startsWith('/api/')) throw new MagpieError('not_found', 'no such route');
    const path = normalize(decodeURIComponent(req.url.split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist)) return reply.code(404).send();
    const ae = req.headers['accept-encoding'];
    const inm = req.headers['if-none-match'];
    // Only the build's own files: a request for `x.js.br` itself is not served raw.
    if (extname(file) && !/\.(br|gz)$/.test(file) && (await isFile(file))) return sendFile(reply, file, path === '/' ? '/index.html' : path, ae, inm);
    if (path.startsWith('/assets/')) return reply.code(404).header('cache-control', REVALIDATE).send();
    const index = join(dist, 'index.html');
    if (await isFile(index)) return sendFile(reply, index, '/index.html', ae, inm);
    return reply
      .header('content-type', TYPES['.html'])
      .header('cache-control', REVALIDATE)
      .send('<!doctype html><title>Magpie</title><h1>Magpie is running</h1><p>The web client is not built. API at /api, WebSocket at /ws, metrics at /metrics.</p>');
  });
}
