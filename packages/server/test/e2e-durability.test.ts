import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, registerAndLogin, RawClient, type ServerProcess } from './harness.ts';

const LIMITS = { MAGPIE_USER_RATE: '100000', MAGPIE_USER_BURST: '100000' };

describe('durability: SIGKILL while 1 000 sends are in flight', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-kill-'));
  let srv: ServerProcess | undefined;
  after(async () => {
    await srv?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('every ACKed message survives exactly once, gap-free; retries of the rest do not duplicate', async (t) => {
    // The kill must land while sends are in flight: some ACKed, some not. A fast server can
    // commit all 1 000 before the signal lands, so an attempt that ACKed everything (or
    // nothing) is discarded and run again on a fresh database, up to five times.
    let a!: { userId: string; token: string };
    let b!: { userId: string; token: string };
    let ackedAtKill = new Map<string, number>(); // clientMsgId → seq
    let sentCount = 0;
    const total = 1000;
    for (let attempt = 1; attempt <= 5; attempt++) {
      rmSync(dataDir, { recursive: true, force: true });
      srv = await startServer({ dataDir, env: LIMITS });
      a = await registerAndLogin(srv.url);
      b = await registerAndLogin(srv.url);
      const { client } = await RawClient.connect(srv.wsUrl, a.token);
      const acked = new Map<string, number>();
      let killed = false;
      let killAt = 150;
      const killedAt = new Promise<void>((resolve) => {
        client.ws.on('message', () => {
          for (const f of client.frames.splice(0)) {
            if (f.type === 'reply' && f.result?.message) acked.set(f.result.message.clientMsgId, f.result.message.seq);
          }
          if (!killed && acked.size >= killAt) {
            killed = true;
            srv!.proc.kill('SIGKILL');
            resolve();
          }
        });
      });
      // A stream of sends (100 per millisecond); later attempts kill earlier (at the first
      // ACK), so the server is mid-way through its first batches.
      if (attempt > 1) killAt = 1;
      sentCount = 0;
      while (sentCount < total && !killed) {
        for (let j = 0; j < 100 && sentCount < total; j++, sentCount++) {
          client.send({ type: 'send', id: sentCount + 1, clientMsgId: `k${sentCount}`, to: b.userId, kind: 'text', body: { text: `k${sentCount}` } });
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      await killedAt;
      await srv.kill('SIGKILL');
      ackedAtKill = new Map(acked);
      t.diagnostic(`attempt ${attempt}: ${ackedAtKill.size} ACKed of ${sentCount} sent at the kill`);
      if (ackedAtKill.size >= 1 && ackedAtKill.size < sentCount) break;
    }
    assert.ok(ackedAtKill.size >= 1 && ackedAtKill.size < sentCount, `killed mid-flight (${ackedAtKill.size} ACKed of ${sentCount} sent)`);

    srv = await startServer({ dataDir, env: LIMITS });
    const { client: c2 } = await RawClient.connect(srv.wsUrl, a.token);
    const conv = [...ackedAtKill.keys()].length ? (await c2.request({ type: 'convs', since: 0 })).entries[0].conv : '';
    async function readAll(): Promise<any[]> {
      const out: any[] = [];
      let after = 0;
      for (;;) {
        const page = await c2.request({ type: 'history', conv, after, limit: 200 });
        out.push(...page.messages);
        if (!page.more) return out;
        after = page.messages.at(-1).seq;
      }
    }
    const stored = await readAll();
    assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: stored.length }, (_, i) => i + 1), 'seq gap-free from 1');
    const ids = stored.map((m) => m.clientMsgId);
    assert.equal(new Set(ids).size, ids.length, 'no clientMsgId twice');
    for (const [cid, seq] of ackedAtKill) {
      const m = stored.find((x) => x.clientMsgId === cid);
      assert.ok(m, `ACKed ${cid} is present`);
      assert.equal(m.seq, seq, `ACKed ${cid} kept its seq`);
    }
    // Retry everything that was not ACKed, with the same clientMsgIds.
    let duplicates = 0;
    for (let i = 0; i < total; i++) {
      const cid = `k${i}`;
      if (ackedAtKill.has(cid)) continue;
      const r = await c2.request({ type: 'send', clientMsgId: cid, to: b.userId, kind: 'text', body: { text: cid } });
      if (r.duplicate) duplicates++;
    }
    t.diagnostic(`sent ${sentCount} before the kill, ${ackedAtKill.size} ACKed, ${stored.length} found after restart, ${duplicates} retries answered as duplicates`);
    const final = await readAll();
    assert.equal(final.length, total, 'each of the 1 000 messages exactly once');
    assert.deepEqual(final.map((m) => m.seq), Array.from({ length: total }, (_, i) => i + 1));
    assert.equal(new Set(final.map((m) => m.clientMsgId)).size, total);
    assert.equal(duplicates, stored.length - ackedAtKill.size, 'committed-but-unACKed sends came back as duplicates');
    // B's inbox holds each message once, in order.
    const { client: cb, welcome } = await RawClient.connect(srv.wsUrl, b.token);
    assert.equal(welcome.inboxSeq, total);
    c2.close();
    cb.close();
  });
});
