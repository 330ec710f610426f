import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { ErrorCodes } from '@magpie/protocol';
import { startServer, registerAndLogin, type ServerProcess, type Account } from './harness.ts';

// Issue 13: answers outside the documented `{"error":{code,message}}` shape (bad
// percent-encoding, over-long paths, oversized headers…), and the security headers.

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Send bytes on a fresh TCP connection and read the first HTTP answer (the server closes or we stop after 3 s). */
function rawRequest(port: number, bytes: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(t);
      s.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      let body = text.slice(end + 4);
      if (headers['content-length']) body = Buffer.from(body).subarray(0, Number(headers['content-length'])).toString('utf8');
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body });
    };
    const t = setTimeout(done, 3000);
    s.on('data', (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const len = /content-length: *(\d+)/i.exec(text.slice(0, end))?.[1];
      if (end >= 0 && len !== undefined && Buffer.byteLength(text) - end - 4 >= Number(len)) done();
    });
    s.on('close', done);
    s.on('error', () => undefined);
    s.write(bytes);
  });
}

const json = (method: string, path: string, body: string, type = 'application/json') =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`;

/** Every answer ≥ 400 is JSON `{"error":{code,message}}` with a documented code. */
function assertShape(name: string, status: number, contentType: string | null | undefined, body: string): void {
  assert.ok(status >= 400, `${name}: status ${status}`);
  assert.match(contentType ?? '', /^application\/json/, `${name}: content-type ${contentType}`);
  let parsed: any;
  assert.doesNotThrow(() => (parsed = JSON.parse(body)), `${name}: body is JSON: ${body.slice(0, 200)}`);
  assert.deepEqual(Object.keys(parsed), ['error'], `${name}: ${body.slice(0, 200)}`);
  assert.ok(Object.hasOwn(ErrorCodes, parsed.error.code), `${name}: documented code ${parsed.error.code}`);
  assert.equal(typeof parsed.error.message, 'string', name);
}

describe('every error answer of the HTTP API has the documented shape', () => {
  let srv: ServerProcess;
  let port: number;
  let a: Account;
  before(async () => {
    srv = await startServer();
    port = Number(new URL(srv.url).port);
    a = await registerAndLogin(srv.url);
  });
  after(async () => {
    await srv.stop();
  });

  const RAW: [name: string, bytes: string, status: number, code: string][] = [
    ['bad percent-encoding in an API path', get('/api/users/%E0%A4%A'), 400, 'invalid'],
    ['bad percent-encoding in a web client path', get('/%E0%A4%A'), 400, 'invalid'],
    ['lone % in the path', get('/api/conversations/%/messages'), 400, 'invalid'],
    ['over-long path (20 KB)', get(`/api/users/${'a'.repeat(20_000)}`), 431, 'frame_too_large'],
    ['long path within the header limit (8 KB)', get(`/api/users/${'a'.repeat(8000)}`), 404, 'not_found'],
    ['oversized header', get('/api/health', `X-Big: ${'b'.repeat(20_000)}\r\n`), 431, 'frame_too_large'],
    ['many headers', get('/api/health', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')), 431, 'frame_too_large'],
    ['not HTTP at all', 'HELLO THERE\r\n\r\n', 400, 'invalid'],
    ['null byte in the request line', get('/api/us\0ers'), 400, 'invalid'],
    ['bad content-length', 'POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'invalid'],
    ['content-length and chunked together', 'POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'invalid'],
    ['unknown API route', get('/api/nothing-here'), 404, 'not_found'],
    ['wrong method', 'DELETE /api/register HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404, 'not_found'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404, 'not_found'],
    ['POST to the web client', json('POST', '/', '{}'), 404, 'not_found'],
    ['bad JSON', json('POST', '/api/register', '{"username":'), 400, 'invalid'],
    ['empty JSON body', json('POST', '/api/register', ''), 400, 'invalid'],
    ['__proto__ in the body', json('POST', '/api/register', '{"__proto__":{"admin":true}}'), 400, 'invalid'],
    ['wrong content type', json('POST', '/api/register', 'username=x', 'application/x-www-form-urlencoded'), 400, 'invalid'],
    ['unknown content type', json('POST', '/api/login', '\x00\x01', 'application/octet-stream'), 400, 'invalid'],
    ['body over the limit', json('POST', '/api/register', `"${'x'.repeat(70_000)}"`), 413, 'frame_too_large'],
    ['deeply nested body', json('POST', '/api/register', '['.repeat(5000) + ']'.repeat(5000)), 400, 'nesting_too_deep'],
    ['WebSocket upgrade elsewhere', 'GET /wsx HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', 404, 'not_found'],
    ['WebSocket upgrade without a key', 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 400, 'invalid'],
    ['WebSocket upgrade with a bad version', 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n', 400, 'invalid'],
    ['WebSocket upgrade with POST', 'POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n', 400, 'invalid'],
  ];

  for (const [name, bytes, status, code] of RAW) {
    it(`raw socket: ${name} → ${status} ${code}`, async () => {
      const r = await rawRequest(port, bytes);
      assert.equal(r.status, status, `${name}: ${r.body.slice(0, 200)}`);
      assertShape(name, r.status, r.headers['content-type'], r.body);
      assert.equal(JSON.parse(r.body).error.code, code);
    });
  }

  it('fetch: malformed requests of every kind', async () => {
    const auth = { authorization: `Bearer ${a.token}` };
    const cases: [string, string, RequestInit][] = [
      ['no token', '/api/me', {}],
      ['bad token', '/api/me', { headers: { authorization: 'Bearer nope' } }],
      ['bad query', '/api/conversations?since=-1', { headers: auth }],
      ['bad query type', '/api/conversations?since=abc&limit=1e9', { headers: auth }],
      ['unknown query key', '/api/conversations?evil=1', { headers: auth }],
      ['history limit above the cap', '/api/conversations/d:a:b/messages?limit=100000', { headers: auth }],
      ['bad JSON', '/api/messages', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{' }],
      ['JSON array body', '/api/messages', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '[]' }],
      ['text body', '/api/messages', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hello' }],
      ['PUT on a GET route', '/api/me', { method: 'PUT', headers: auth }],
      ['unknown admin route', '/api/admin/nothing', { headers: auth }],
      ['encoded slash in a param', '/api/users/..%2F..%2Fetc', { headers: auth }],
      ['unknown user', '/api/users/u-none', { headers: auth }],
    ];
    for (const [name, path, init] of cases) {
      const res = await fetch(srv.url + path, init);
      assertShape(name, res.status, res.headers.get('content-type'), await res.text());
    }
  });
});

describe('security headers on the web client and the API', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.stop();
  });

  /** The CSP as directive → sources. */
  function csp(header: string | null): Map<string, string[]> {
    assert.ok(header, 'a Content-Security-Policy header');
    return new Map(
      header
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((d) => d[0])
        .map(([name, ...sources]) => [name!, sources]),
    );
  }

  /** Fetch `path` and check what every answer carries: a CSP without framing, nosniff, DENY, no Referer, CORP, no HSTS without TLS. */
  async function common(path: string, init: RequestInit = {}): Promise<{ h: Headers; p: Map<string, string[]> }> {
    const res = await fetch(srv.url + path, init);
    await res.arrayBuffer();
    const h = res.headers;
    assert.equal(h.get('x-content-type-options'), 'nosniff', path);
    assert.equal(h.get('x-frame-options'), 'DENY', path);
    assert.equal(h.get('referrer-policy'), 'no-referrer', path);
    assert.equal(h.get('cross-origin-resource-policy'), 'same-origin', path);
    assert.equal(h.get('strict-transport-security'), null, `${path}: no HSTS without TLS`);
    const p = csp(h.get('content-security-policy'));
    assert.deepEqual(p.get('frame-ancestors'), ["'none'"], path);
    return { h, p };
  }

  it('API answers (JSON, errors, metrics) carry the strictest CSP: nothing loads, nothing runs, sandboxed', async () => {
    for (const [path, init] of [
      ['/api/health', {}],
      ['/api/me', {}],
      ['/api/nothing', {}],
      ['/api/docs', {}],
      ['/metrics', {}],
      ['/api/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }],
    ] as [string, RequestInit][]) {
      const { h, p } = await common(path, init);
      assert.deepEqual(p.get('default-src'), ["'none'"], path);
      assert.ok(p.has('sandbox'), `${path}: sandboxed when opened as a page`);
      assert.equal([...p.keys()].filter((d) => d !== 'default-src' && d !== 'frame-ancestors' && d !== 'sandbox').length, 0, `${path}: no source allowed beyond default-src 'none'`);
      // Page-only headers are not sent on API answers.
      for (const name of ['cross-origin-opener-policy', 'origin-agent-cluster', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'x-xss-protection']) assert.equal(h.get(name), null, `${path}: ${name}`);
    }
  });

  it('pages carry the web client\'s CSP, nosniff, no framing and a referrer policy', async () => {
    const host = new URL(srv.url).host;
    for (const [path, init] of [
      ['/', {}],
      ['/login', {}],
      ['/sw.js', {}],
      ['/admin/', {}],
    ] as [string, RequestInit][]) {
      const { h, p } = await common(path, init);
      assert.equal(h.get('cross-origin-opener-policy'), 'same-origin', path);
      assert.deepEqual(p.get('default-src'), ["'self'"], path);
      assert.deepEqual(p.get('script-src'), ["'self'"], `${path}: no inline or eval'd script`);
      assert.deepEqual(p.get('object-src'), ["'none'"], path);
      assert.ok(p.get('connect-src')?.includes("'self'"), path);
      assert.ok(p.get('connect-src')?.includes(`ws://${host}`), `${path}: the WebSocket of this origin`);
      assert.deepEqual(p.get('worker-src'), ["'self'"], `${path}: the service worker`);
      assert.ok(!p.has('upgrade-insecure-requests'), `${path}: plain http on a LAN keeps working`);
    }
  });

  it('a forged Host header does not get into the CSP', async () => {
    const port = Number(new URL(srv.url).port);
    const r = await rawRequest(port, "GET / HTTP/1.1\r\nHost: evil;script-src *\r\nConnection: close\r\n\r\n");
    const p = csp(r.headers['content-security-policy'] ?? null);
    assert.deepEqual(p.get('script-src'), ["'self'"]);
    assert.deepEqual(p.get('connect-src'), ["'self'"]);
  });
});

describe('/metrics can be restricted to a token and a separate address', () => {
  let srv: ServerProcess;
  let metricsPort = 0;
  const TOKEN = 'scrape-token-0123456789abcdef';
  before(async () => {
    // A free port for the metrics listener.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    metricsPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    srv = await startServer({ env: { MAGPIE_METRICS_TOKEN: TOKEN, MAGPIE_METRICS_PORT: String(metricsPort), MAGPIE_METRICS_HOST: '127.0.0.1' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('the API port no longer serves metrics; the metrics port wants the token', async () => {
    const onApi = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assertShape('metrics on the API port', onApi.status, onApi.headers.get('content-type'), await onApi.text());
    assert.equal(onApi.status, 404);
    const base = `http://127.0.0.1:${metricsPort}`;
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }] as Record<string, string>[]) {
      const r = await fetch(`${base}/metrics`, { headers });
      assertShape('metrics without the token', r.status, r.headers.get('content-type'), await r.text());
      assert.equal(r.status, 401);
    }
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /magpie_connections/);
    const other = await fetch(`${base}/api/health`);
    assertShape('other routes on the metrics port', other.status, other.headers.get('content-type'), await other.text());
  });
});
