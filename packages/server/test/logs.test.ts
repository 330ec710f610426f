import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/util/logger.ts';
import { registerAndLogin, RawClient } from './harness.ts';

/** Structured logs: secrets are redacted; the send/commit/ACK path logs its ids at debug level. */
function capture(): { stream: Writable; lines: () => any[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

test('tokens, passwords, hashes, push tokens and auth headers are redacted; ids are kept', async () => {
  const c = capture();
  const log = createLogger('debug', 'n-test', c.stream);
  log.info({ token: 'tok-secret', password: 'pw-secret', userId: 'u1', req: { headers: { authorization: 'Bearer hdr-secret', host: 'x' } } }, 'one');
  log.info({ body: { newPassword: 'np-secret', currentPassword: 'cp-secret' }, device: { pushToken: 'push-secret' }, session: { tokenHash: 'th-secret' } }, 'two');
  await new Promise((r) => setImmediate(r));
  const text = JSON.stringify(c.lines());
  for (const s of ['tok-secret', 'pw-secret', 'hdr-secret', 'np-secret', 'cp-secret', 'push-secret', 'th-secret']) assert.ok(!text.includes(s), `${s} redacted`);
  const [one] = c.lines();
  assert.equal(one.userId, 'u1');
  assert.equal(one.node, 'n-test');
  assert.equal(one.token, '[redacted]');
  assert.equal(one.req.headers.host, 'x');
});

test('at debug level a send logs send, committed and ack with request, user, conversation and message ids, and no token', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-logs-'));
  const proc = fork(new URL('../src/main.ts', import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'debug', MAGPIE_NODE_ID: 'log-node' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      proc.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1')));
      proc.on('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const a = await registerAndLogin(url);
    const b = await registerAndLogin(url);
    const ca = (await RawClient.connect(url.replace('http', 'ws') + '/ws', a.token)).client;
    const cb = (await RawClient.connect(url.replace('http', 'ws') + '/ws', b.token)).client;
    const sent = await ca.request({ type: 'send', id: 77, clientMsgId: 'log-1', to: b.userId, kind: 'text', body: { text: 'hi' } });
    const got = await cb.waitFor((f) => f.type === 'msg');
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });
    const deadline = Date.now() + 5000;
    const lines = () => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    while (Date.now() < deadline && !lines().some((l) => l.msg === 'ack')) await new Promise((r) => setTimeout(r, 50));
    const all = lines();
    const send = all.find((l) => l.msg === 'send');
    const committed = all.find((l) => l.msg === 'committed');
    const ack = all.find((l) => l.msg === 'ack');
    assert.ok(send && committed && ack, 'send, committed and ack lines');
    assert.equal(send.level, 20);
    assert.equal(send.node, 'log-node');
    assert.equal(typeof send.reqId, 'number');
    assert.deepEqual([send.userId, send.clientMsgId], [a.userId, 'log-1']);
    assert.deepEqual([committed.reqId, committed.msgId, committed.conv, committed.seq], [send.reqId, sent.message.id, sent.message.conv, sent.message.seq]);
    assert.deepEqual([ack.userId, ack.inboxSeq], [b.userId, got.inboxSeq]);
    assert.ok(!out.includes(a.token) && !out.includes(b.token), 'no session token in the logs');
    assert.ok(!out.includes('correct horse'), 'no password in the logs');
    ca.close();
    cb.close();
  } finally {
    proc.kill('SIGINT');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
});
