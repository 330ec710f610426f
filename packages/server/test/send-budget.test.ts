import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Connection } from '../src/gateway/connection.ts';
import { SendBudget } from '../src/gateway/send-budget.ts';
import { fakeWs, HeldTask } from './connection-fakes.ts';

/** A request that runs until the test finishes it; unbudgeted ones (ACKs) finish at once, as an ACK does. */
class Task extends HeldTask {
  override run(done: () => void): void {
    super.run(done);
    if (!this.budgeted) this.finish();
  }
}

function connection(sends: SendBudget, maxInflight = 8): { conn: Connection; ws: ReturnType<typeof fakeWs> } {
  const ws = fakeWs();
  const conn = new Connection(ws, '127.0.0.1', { maxBuffered: 1 << 20, maxInflight, stallMs: 10_000, sends }, 30_000, () => {});
  return { conn, ws };
}

describe('SendBudget (issue 23: the node bounds the sends it handles at once)', () => {
  it('a plain TCP connection held for the budget stops its socket handle when its next frame arrives; its stream is neither paused nor resumed', async () => {
    const budget = new SendBudget(1);
    const log: string[] = [];
    const ws = fakeWs();
    // The libuv handle of a net.Socket (what connection.ts stopReading/startReading use).
    const handle = { reading: true, stops: 0, starts: 0, readStop: () => (handle.stops++, 0), readStart: () => (handle.starts++, 0) };
    const raw = { writable: true, writableLength: 0, write: () => true, on: () => raw, _handle: handle };
    const conn = new Connection(ws, '127.0.0.1', { maxBuffered: 1 << 20, maxInflight: 8, stallMs: 10_000, sends: budget }, 30_000, () => {}, raw as never);
    const tasks = new Map<string, Task>();
    const submit = (name: string): void => {
      const t = new Task(name, true, log);
      tasks.set(name, t);
      conn.submit(t);
    };
    submit('s1');
    submit('s2'); // over the budget: waits
    assert.deepEqual(log, ['s1']);
    assert.equal(conn.heldUnread(), true);
    // Nothing more arrives before the budget has room: the handle was never stopped nor restarted.
    tasks.get('s1')!.finish();
    await tick();
    assert.deepEqual(log, ['s1', 's2']);
    assert.deepEqual([handle.stops, handle.starts, handle.reading], [0, 0, true]);
    assert.equal(conn.heldUnread(), false);

    // s2 holds the budget; s3 waits, then more frames arrive: the handle stops reading at the first.
    submit('s3');
    assert.equal(handle.stops, 0);
    submit('s4');
    assert.equal(handle.stops, 1, 'stopped once a frame arrived while reads were held');
    // Node's own flag is left set, so its Readable does not start the handle again (connection.ts stopReading).
    assert.equal(handle.reading, true);
    submit('s5');
    assert.equal(handle.stops, 1);
    assert.deepEqual(log, ['s1', 's2'], 'the frames wait unstarted');
    // Each finishes in turn; they start in arrival order, and the handle reads again once nothing waits.
    for (const [done, next] of [['s2', 's3'], ['s3', 's4']] as const) {
      tasks.get(done)!.finish();
      await tick();
      assert.equal(log.at(-1), next);
      assert.equal(handle.starts, 0, 'still held while a frame waits');
    }
    tasks.get('s4')!.finish();
    await tick();
    assert.deepEqual(log, ['s1', 's2', 's3', 's4', 's5']);
    assert.deepEqual([handle.stops, handle.starts, handle.reading], [1, 1, true]);
    assert.equal(conn.heldUnread(), false);
    assert.equal(ws.pauses, 0, 'the stream was left flowing (no pause, hence no resume)');
    tasks.get('s5')!.finish();
  });

  it('holds sends beyond the budget unstarted, the socket unread, and lets them go in arrival order as slots free', async () => {
    const budget = new SendBudget(4);
    const log: string[] = [];
    const a = connection(budget);
    const b = connection(budget);
    const tasks = new Map<string, Task>();
    const submit = (c: Connection, name: string, budgeted = true): Task => {
      const t = new Task(name, budgeted, log);
      tasks.set(name, t);
      c.submit(t);
      return t;
    };
    for (const n of ['a1', 'a2', 'a3']) submit(a.conn, n);
    submit(b.conn, 'b1');
    submit(b.conn, 'b2'); // the fifth send: over the budget
    submit(a.conn, 'a4');
    assert.deepEqual(log, ['a1', 'a2', 'a3', 'b1']);
    assert.equal(budget.inUse, 4);
    assert.equal(budget.waiters, 2);
    assert.ok(b.ws.paused && a.ws.paused, 'a connection with a held send is not read');
    // An ACK behind a held send keeps its place (frames of a connection never overtake each other).
    submit(a.conn, 'ack', false);
    assert.equal(tasks.get('ack')!.started, false);

    // One slot free: below a quarter of the budget free, nobody is woken yet… (4 / 4 = 1: one free slot suffices here)
    tasks.get('a1')!.finish();
    assert.equal(budget.inUse, 3);
    await tick();
    // …then the oldest waiter (b, whose b2 waited first) goes first.
    assert.deepEqual(log, ['a1', 'a2', 'a3', 'b1', 'b2']);
    assert.equal(budget.inUse, 4);
    assert.equal(b.ws.paused, false, 'b is read again once nothing of it waits');
    tasks.get('b1')!.finish();
    await tick();
    assert.deepEqual(log, ['a1', 'a2', 'a3', 'b1', 'b2', 'a4', 'ack']);
    assert.equal(a.ws.paused, false);
    assert.equal(budget.waiters, 0);
    for (const n of ['a2', 'a3', 'b2', 'a4']) tasks.get(n)!.finish();
    assert.equal(budget.inUse, 0);
  });

  it('an ACK read behind sends that wait for the budget is handled at once; behind any other waiting request it keeps its place', async () => {
    const budget = new SendBudget(1);
    const log: string[] = [];
    const a = connection(budget);
    const task = (name: string, budgeted: boolean, overtakes = false): Task => Object.assign(new Task(name, budgeted, log), { overtakes });
    const a1 = task('a1', true);
    a.conn.submit(a1);
    a.conn.submit(task('a2', true)); // waits for the budget
    a.conn.submit(task('ack1', false, true));
    assert.deepEqual(log, ['a1', 'ack1'], 'the ACK went ahead of the held send');
    assert.ok(a.ws.paused, 'still not read: a send waits');
    // A request that is not a send (say a sync) waits behind a2; an ACK after it waits too.
    a.conn.submit(task('sync', false));
    a.conn.submit(task('ack2', false, true));
    assert.deepEqual(log, ['a1', 'ack1']);
    a1.finish();
    await tick();
    assert.deepEqual(log, ['a1', 'ack1', 'a2', 'sync', 'ack2'], 'then in arrival order');
    assert.equal(a.ws.paused, false);
  });

  it('wakes waiters only once a quarter of the budget is free, and never loses one', async () => {
    const budget = new SendBudget(8);
    const log: string[] = [];
    const conns = Array.from({ length: 4 }, () => connection(budget));
    const running: Task[] = [];
    let k = 0;
    for (const c of conns) {
      for (let j = 0; j < 3; j++) {
        const t = new Task(`s${k++}`, true, log);
        running.push(t);
        c.conn.submit(t);
      }
    }
    assert.equal(log.length, 8);
    assert.equal(budget.waiters, 2);
    running[0]!.finish();
    await tick();
    assert.equal(log.length, 8, 'one free slot of 8 wakes nobody');
    running[1]!.finish();
    await tick();
    assert.equal(log.length, 10, 'two free slots (a quarter) let the waiters go');
    for (const t of running) t.finish();
    await tick();
    assert.equal(log.length, 12);
    assert.equal(budget.inUse, 2, 'the last two started once the others finished');
    for (const t of running) t.finish();
    assert.equal(budget.inUse, 0);
    assert.equal(budget.waiters, 0);
  });

  it('a connection held unread for the budget is not taken for silent (heartbeat, retry presence)', async () => {
    const budget = new SendBudget(1);
    const log: string[] = [];
    const a = connection(budget);
    const b = connection(budget);
    const first = new Task('a1', true, log);
    a.conn.submit(first);
    b.conn.submit(new Task('b1', true, log));
    const later = Date.now() + 10 * 60_000;
    b.conn.lastSeen = 0;
    assert.ok(b.ws.paused);
    assert.ok(b.conn.heardFrom(later), 'its frames wait in our buffers: not silent');
    assert.ok(b.conn.isAlive());
    first.finish();
    await tick();
    assert.deepEqual(log, ['a1', 'b1']);
    assert.equal(b.ws.paused, false);
    assert.ok(Date.now() - b.conn.lastSeen < 1000, 'read again: its heartbeat window starts now');
    assert.equal(b.conn.heardFrom(later), false, 'silent for real once it is read again');
    a.conn.lastSeen = 0;
    assert.equal(a.conn.isAlive(), false, 'a connection read all along is judged by its frames, as before');
  });

  it('a closed connection that waited gives up its turn without taking a slot', async () => {
    const budget = new SendBudget(1);
    const log: string[] = [];
    const a = connection(budget);
    const b = connection(budget);
    const first = new Task('a1', true, log);
    a.conn.submit(first);
    b.conn.submit(new Task('b1', true, log));
    b.conn.markClosed();
    first.finish();
    await tick();
    assert.deepEqual(log, ['a1']);
    assert.equal(budget.inUse, 0);
    a.conn.submit(new Task('a2', true, log));
    assert.deepEqual(log, ['a1', 'a2']);
  });
});
