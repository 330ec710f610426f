import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { startServer, registerAndLogin, RawClient, sleep, type ServerProcess, type Account } from './harness.ts';

// Issue 13: `history` amplified — 100 requests of 93 bytes produced ~100 MB of answers and
// 1.6 GB RSS; a reader that stopped reading drove the server to 2.6 GB and was cut off with
// 1006 instead of 4501 `slow_consumer`.

/** Resident memory of a process in MiB (Linux). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

async function slowConsumerClosesAt(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/magpie_closes_total\{reason="slow_consumer"\} (\d+)/.exec(text)?.[1] ?? 0);
}

const socketOf = (c: RawClient) => (c.ws as unknown as { _socket: Socket })._socket;

describe('a client that asks for a lot and reads nothing', () => {
  let srv: ServerProcess;
  let a: Account;
  let b: Account;
  let conv = '';
  before(async () => {
    srv = await startServer({ env: { MAGPIE_LOG_LEVEL: 'error', MAGPIE_SLOW_CONSUMER_MS: '2000', MAGPIE_USER_BURST: '1000' } });
    a = await registerAndLogin(srv.url);
    b = await registerAndLogin(srv.url);
    // 190 messages of ~15 KiB (the burst of A's budget): a full history page is ~3 MB of JSON.
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    const text = 'x'.repeat(15_000);
    const sends = Array.from({ length: 190 }, (_, i) => client.request({ type: 'send', clientMsgId: `big${i}`, to: b.userId, kind: 'text', body: { text: `${i} ${text}` } }, 30_000));
    conv = (await Promise.all(sends))[0].message.conv;
    client.close();
  });
  after(async () => {
    await srv.stop();
  });
  const slowConsumerCloses = () => slowConsumerClosesAt(srv.url);

  it('history pages are bounded in bytes and say `more`', async () => {
    const { client } = await RawClient.connect(srv.wsUrl, b.token);
    const page = await client.request({ type: 'history', conv, limit: 200 });
    const bytes = JSON.stringify(page).length;
    assert.ok(bytes <= 300 * 1024, `a page of ${bytes} bytes`);
    assert.ok(page.messages.length >= 1 && page.messages.length < 190);
    assert.equal(page.more, true);
    // Paging on reaches everything.
    let seen = page.messages.length;
    let before = page.messages.at(-1).seq;
    for (let more = page.more; more; ) {
      const next = await client.request({ type: 'history', conv, before, limit: 200 });
      seen += next.messages.length;
      before = next.messages.at(-1)?.seq;
      more = next.more;
    }
    assert.equal(seen, 190);
    client.close();
  });

  it('a client that reads is never cut off for its own replies, however many it pipelines', async () => {
    const { client } = await RawClient.connect(srv.wsUrl, b.token);
    for (let i = 0; i < 200; i++) client.send({ type: 'history', id: 5000 + i, conv, limit: 200 });
    await client.waitFor(() => client.frames.filter((f) => f.id >= 5000).length === 200, 60_000);
    const answers = client.frames.filter((f) => f.id >= 5000);
    assert.ok(answers.every((f) => f.type === 'reply' && f.result.messages.length > 0));
    assert.equal(new Set(answers.map((f) => f.id)).size, 200, 'every request answered once');
    assert.equal(client.closeCode, undefined);
    client.close();
  });

  it('many history requests and a paused reader: memory stays bounded and the close is 4501', async () => {
    const pid = srv.proc.pid!;
    const base = rssMiB(pid);
    const { client } = await RawClient.connect(srv.wsUrl, b.token);
    socketOf(client).pause(); // stop reading: the kernel buffers fill, then the server's
    for (let i = 0; i < 200; i++) client.send(`{"type":"history","id":${1000 + i},"conv":"${conv}","limit":200}`);
    // Watch the server's memory until it gives up on the client (at most 20 s).
    let peak = base;
    const t0 = Date.now();
    while ((await slowConsumerCloses()) === 0 && Date.now() - t0 < 20_000) {
      await sleep(100);
      peak = Math.max(peak, rssMiB(pid));
    }
    console.log(`# history attack: server RSS ${base.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB; cut off after ${Date.now() - t0} ms`);
    socketOf(client).resume();
    await client.waitClose(10_000);
    assert.equal(client.closeCode, 4501, `closed with ${client.closeCode} ${client.closeReason}`);
    assert.ok(peak - base < 120, `server RSS grew by ${(peak - base).toFixed(0)} MiB`);
    // The server is fine afterwards.
    const { client: c2 } = await RawClient.connect(srv.wsUrl, b.token);
    assert.ok((await c2.request({ type: 'history', conv, limit: 5 })).messages.length === 5);
    c2.close();
  });
});
