/**
 * The search index follows the message lifecycle in the real server: an edit is found by its
 * new text only, a recalled message is found by nobody, a message deleted for me leaves my
 * results but not my peer's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, api, RawClient, sleep, type ServerProcess, type Account } from './harness.ts';

describe('search follows recall, edit and delete-for-me', () => {
  let srv: ServerProcess;
  let a: Account;
  let b: Account;
  let ca: RawClient;
  before(async () => {
    srv = await startServer();
    [a, b] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    ca = (await RawClient.connect(srv.wsUrl, a.token)).client;
  });
  after(async () => {
    ca?.close();
    await srv?.stop();
  });

  const find = async (who: Account, q: string): Promise<number[]> => {
    const r = await api(srv.url, 'GET', `/api/search?q=${encodeURIComponent(q)}`, undefined, who.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body.hits as { seq: number }[]).map((h) => h.seq);
  };
  /** The index is written off the send path (once per event-loop turn): wait for it. */
  const eventually = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 50 && !(await check()); i++) await sleep(100);
    assert.ok(await check());
  };

  it('edit, recall and delete-for-me change what search finds', async () => {
    const send = (text: string, id: string) => ca.request({ type: 'send', clientMsgId: id, to: b.userId, kind: 'text', body: { text } });
    const m1 = (await send('pineapple upside-down cake', 's1')).message;
    const m2 = (await send('watermelon 西瓜 season', 's2')).message;
    const m3 = (await send('blueberry muffins tonight', 's3')).message;
    const conv = encodeURIComponent(m1.conv);
    await eventually(async () => (await find(b, 'pineapple')).includes(m1.seq) && (await find(b, '西瓜')).includes(m2.seq) && (await find(a, 'blueberry')).includes(m3.seq));

    const edit = await api(srv.url, 'POST', `/api/conversations/${conv}/messages/${m1.seq}/edit`, { text: 'mango sticky rice' }, a.token);
    assert.equal(edit.status, 200, JSON.stringify(edit.body));
    await eventually(async () => (await find(b, 'mango sticky')).includes(m1.seq) && !(await find(b, 'pineapple')).includes(m1.seq));

    const recall = await api(srv.url, 'POST', `/api/conversations/${conv}/messages/${m2.seq}/recall`, undefined, a.token);
    assert.equal(recall.status, 200, JSON.stringify(recall.body));
    await eventually(async () => !(await find(b, '西瓜')).includes(m2.seq) && !(await find(a, 'watermelon')).includes(m2.seq));

    const hide = await api(srv.url, 'POST', `/api/conversations/${conv}/hide`, { seqs: [m3.seq] }, a.token);
    assert.equal(hide.status, 200, JSON.stringify(hide.body));
    await eventually(async () => !(await find(a, 'blueberry')).includes(m3.seq));
    assert.ok((await find(b, 'blueberry')).includes(m3.seq), 'the peer still finds it');
  });
});
