import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Connection, type ConnectionLimits } from '../src/gateway/connection.ts';
import { SendBudget } from '../src/gateway/send-budget.ts';
import { fakeWs, HeldTask as Task } from './connection-fakes.ts';

function connection(limits: Partial<ConnectionLimits>): { conn: Connection; ws: ReturnType<typeof fakeWs> } {
  const ws = fakeWs();
  const conn = new Connection(ws, '127.0.0.1', { maxBuffered: 1 << 20, maxInflight: 8, stallMs: 10_000, ...limits }, 30_000, () => {});
  return { conn, ws };
}

describe('a connection\'s window of sends (issue 23: limits.maxSendsInFlightPerConnection)', () => {
  for (const sends of [new SendBudget(2048), undefined]) {
    it(`admits up to maxSendsInflight sends at once next to maxInflight other requests (${sends ? 'with' : 'without'} a node budget)`, async () => {
      const log: string[] = [];
      const { conn, ws } = connection({ maxInflight: 8, maxSendsInflight: 32, ...(sends ? { sends } : {}) });
      const tasks: Task[] = [];
      const submit = (name: string, send: boolean): Task => {
        const t = new Task(name, send, log);
        tasks.push(t);
        conn.submit(t);
        return t;
      };
      for (let i = 0; i < 20; i++) submit(`s${i}`, true);
      assert.equal(log.length, 20, '20 sends started at once (more than the 8 of maxInflight)');
      assert.equal(ws.paused, false);
      for (let i = 0; i < 8; i++) submit(`q${i}`, false);
      assert.equal(log.length, 28, 'the 8 other requests have their own slots');
      const q8 = submit('q8', false);
      assert.equal(q8.started, false, 'the 9th other request waits');
      assert.equal(ws.paused, true, 'and the socket is not read');
      const s20 = submit('s20', true);
      assert.equal(s20.started, false, 'a send behind the waiting request keeps its place (arrival order)');
      // Sends finishing free send slots only: the waiting request at the head still waits, and so does the send behind it.
      tasks[0]!.finish();
      await tick();
      assert.equal(q8.started, false);
      assert.equal(s20.started, false);
      // One other request finishes: the head goes, then the send behind it.
      tasks[20]!.finish();
      await tick();
      assert.deepEqual(log.slice(-2), ['q8', 's20']);
      assert.equal(ws.paused, false, 'read again once nothing waits');
      for (const t of tasks) t.finish();
      if (sends) assert.equal(sends.inUse, 0, 'every budget slot given back');
    });
  }

  it('the 33rd send waits for a send slot, in order, while other requests still start', async () => {
    const log: string[] = [];
    const budget = new SendBudget(2048);
    const { conn, ws } = connection({ maxInflight: 8, maxSendsInflight: 32, sends: budget });
    const tasks: Task[] = [];
    for (let i = 0; i < 34; i++) {
      const t = new Task(`s${i}`, true, log);
      tasks.push(t);
      conn.submit(t);
    }
    assert.equal(log.length, 32);
    assert.equal(budget.inUse, 32);
    assert.equal(ws.paused, true);
    const sync = new Task('sync', false, log);
    conn.submit(sync);
    assert.equal(sync.started, false, 'behind the waiting sends');
    tasks[5]!.finish();
    await tick();
    assert.deepEqual(log.slice(32), ['s32']);
    tasks[6]!.finish();
    await tick();
    assert.deepEqual(log.slice(32), ['s32', 's33', 'sync'], 'arrival order: the sync right after the sends before it');
    assert.equal(ws.paused, false);
    for (const t of [...tasks, sync]) t.finish();
    assert.equal(budget.inUse, 0);
  });

  it('without a window of their own, sends share maxInflight with the other requests (as before)', () => {
    const log: string[] = [];
    const { conn } = connection({ maxInflight: 8, sends: new SendBudget(2048) });
    for (let i = 0; i < 12; i++) conn.submit(new Task(`s${i}`, true, log));
    assert.equal(log.length, 8);
  });
});
