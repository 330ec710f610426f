import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import WebSocket from 'ws';
import { startServer } from './harness.ts';

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('optional TLS', { skip: haveOpenssl() ? false : 'openssl not installed' }, () => {
  it('serves HTTPS and WSS when given a key and certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'magpie-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const srv = await startServer({ env: { MAGPIE_TLS_KEY: key, MAGPIE_TLS_CERT: cert } });
    try {
      assert.ok(srv.url.startsWith('https://'));
      const body = await new Promise<string>((resolve, reject) => {
        request(srv.url + '/api/health', { rejectUnauthorized: false }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve(s));
        })
          .on('error', reject)
          .end();
      });
      assert.deepEqual(JSON.parse(body), { ok: true });
      const ws = new WebSocket(srv.url.replace('https', 'wss') + '/ws', { rejectUnauthorized: false });
      const reply = await new Promise<any>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', id: 1, versions: [1], token: 'bad', inboxSeq: 0 })));
        ws.on('message', (d) => resolve(JSON.parse(d.toString())));
        ws.on('error', reject);
      });
      assert.equal(reply.code, 'unauthorized', 'the WSS channel speaks the protocol');
      ws.close();
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
