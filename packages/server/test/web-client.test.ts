/**
 * Static serving of the web client (src/http/web-client.ts): precompressed brotli/gzip by
 * Accept-Encoding, immutable caching for hashed assets, revalidation (no-cache + ETag → 304)
 * for index.html and the service worker, index.html for client routes. Runs on a temporary
 * dist folder, then on the real build when there is one.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { acceptedEncodings, registerWebClient } from '../src/http/web-client.ts';

const JS = 'console.log("magpie");\n'.repeat(200);

function fakeDist(): string {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-dist-')) + '/';
  mkdirSync(join(dir, 'assets'));
  const put = (name: string, body: string) => {
    writeFileSync(join(dir, name), body);
    writeFileSync(join(dir, name + '.gz'), gzipSync(body));
    writeFileSync(join(dir, name + '.br'), brotliCompressSync(body));
  };
  put('index.html', '<!doctype html><title>Magpie</title><script type="module" src="/assets/index-abc123.js"></script>');
  put('assets/index-abc123.js', JS);
  put('assets/index-abc123.css', 'body{color:red}'.repeat(100));
  put('sw.js', 'self.addEventListener("fetch", () => {});');
  writeFileSync(join(dir, 'icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  return dir;
}

describe('web client static files', () => {
  const dist = fakeDist();
  const app = Fastify();
  registerWebClient(app, dist);
  after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });

  it('parses Accept-Encoding, honouring q=0 and *', () => {
    assert.deepEqual([...acceptedEncodings('gzip, deflate, br, zstd')].sort(), ['br', 'deflate', 'gzip', 'zstd']);
    assert.equal(acceptedEncodings('br;q=0, gzip').has('br'), false);
    assert.equal(acceptedEncodings('*').has('br'), true);
    assert.equal(acceptedEncodings('*, br;q=0').has('br'), false);
    assert.equal(acceptedEncodings(undefined).size, 0);
  });

  it('sends brotli when accepted, gzip otherwise, identity without Accept-Encoding', async () => {
    const br = await app.inject({ url: '/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(br.statusCode, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['vary'], 'Accept-Encoding');
    assert.match(String(br.headers['content-type']), /^text\/javascript/);
    assert.equal(brotliDecompressSync(br.rawPayload).toString(), JS);

    const gz = await app.inject({ url: '/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.rawPayload).toString(), JS);

    const plain = await app.inject({ url: '/assets/index-abc123.js' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, JS);

    const css = await app.inject({ url: '/assets/index-abc123.css', headers: { 'accept-encoding': 'br' } });
    assert.equal(css.headers['content-encoding'], 'br');
  });

  it('hashed assets are immutable for a year; index.html and sw.js revalidate', async () => {
    const asset = await app.inject({ url: '/assets/index-abc123.js', headers: { 'accept-encoding': 'br' } });
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    for (const url of ['/', '/index.html', '/c/g%3A42', '/settings', '/sw.js']) {
      const r = await app.inject({ url, headers: { 'accept-encoding': 'gzip, br' } });
      assert.equal(r.statusCode, 200, url);
      assert.equal(r.headers['cache-control'], 'no-cache', url);
      assert.equal(r.headers['content-encoding'], 'br', url);
    }
    const icon = await app.inject({ url: '/icon.svg', headers: { 'accept-encoding': 'br' } });
    assert.equal(icon.headers['content-encoding'], undefined, 'no precompressed variant: sent as is');
    assert.equal(icon.headers['cache-control'], 'public, max-age=86400');
  });

  it('revalidation answers 304 for an unchanged file', async () => {
    const first = await app.inject({ url: '/', headers: { 'accept-encoding': 'br' } });
    const etag = String(first.headers.etag);
    assert.ok(etag);
    const again = await app.inject({ url: '/', headers: { 'accept-encoding': 'br', 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    const otherEncoding = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip', 'if-none-match': etag } });
    assert.equal(otherEncoding.statusCode, 200, 'the gzip variant has its own ETag');
  });

  it('a missing asset is a 404 (not index.html), and the .br/.gz files are not served raw', async () => {
    assert.equal((await app.inject({ url: '/assets/index-gone.js' })).statusCode, 404);
    assert.equal((await app.inject({ url: '/assets/index-abc123.js.br' })).statusCode, 404);
    const html = await app.inject({ url: '/index.html.gz' });
    assert.match(String(html.headers['content-type']), /^text\/html/, 'falls through to the app');
    assert.doesNotMatch((await app.inject({ url: '/../../../../etc/passwd' })).body, /root:/);
  });
});

const realDist = new URL('../../web/dist/', import.meta.url).pathname;
describe('the real build is precompressed', { skip: existsSync(join(realDist, 'index.html')) ? false : 'packages/web/dist is not built' }, () => {
  const app = Fastify();
  registerWebClient(app, realDist);
  after(() => app.close());

  it('every JS and CSS file has .br and .gz variants and is served compressed', async () => {
    const assets = readdirSync(join(realDist, 'assets')).filter((f) => /\.(js|css)$/.test(f));
    assert.ok(assets.length >= 2);
    for (const f of assets) {
      const r = await app.inject({ url: `/assets/${f}`, headers: { 'accept-encoding': 'gzip, deflate, br, zstd' } });
      assert.equal(r.headers['content-encoding'], 'br', f);
      assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable', f);
    }
  });
});
