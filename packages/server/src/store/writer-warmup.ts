/**
 * The SQLite writer thread's warm-up (issue 23, the open loop's first seconds): while the thread
 * is idle after its start, it runs its own append and ACK-flush code on a private
 * in-memory database with the current schema — 1:1 messages between made-up users, new
 * conversations and existing ones, then the devices' ACKs as the gateway makes them — so V8
 * has compiled those functions (and seen the object shapes and branches they meet) before the
 * first real send. At its end it prepares its statements on the thread's real connection. Nothing of it
 * reaches the server's database: the warm-up store has its own connection to `:memory:` (its
 * schema copied from the database's `sqlite_master`: the writer thread does not load the
 * migration tool), and is closed when done.
 *
 * Why: a fresh thread optimizes `appendTx`, the append flush and the ACK flush — large async
 * functions, ~100 ms of TurboFan compilation each — under the first load, several times over
 * (each new shape or branch met in the first batches deoptimizes them and they compile again).
 * On the 2-core machine that compilation took a core's worth of V8's helper threads in the open
 * loop's first second, beside the event loop, which then fell behind (docs/benchmarks.md, coldq).
 *
 * The thread runs it as its own jobs from a second after its start (a store opened and closed at
 * once skips it), one batch each, behind every real job (WriterQueue puts appends first; a real
 * ACK flush waits behind at most one warm-up batch, ~2–5 ms). Cost: ~0.6 s of CPU once per start
 * (`MAGPIE_WRITER_WARMUP=0` turns it off).
 */
import { SqliteEngine } from '../db/sqlite-engine.ts';
import { ObtainedTracker } from '../gateway/obtained.ts';
import { SqlStore } from './sql-store.ts';
import { knownReadTexts } from './ack-writer.ts';
import { decodeBatch, encodeBatch, encodeOutcomes } from './sqlite-writer-wire.ts';
import type { AppendRequest, DeviceAck } from './store.ts';

/** The warm-up starts this long after the thread (ms). */
export const WARMUP_DELAY_MS = 1000;
/** Warm-up batches: enough calls for V8 to optimize the append and ACK paths and settle their shapes. */
export const WARMUP_BATCHES = 120;
const USERS = 256;
const BATCH = 48;

const uid = (i: number): string => `warmup${String(i).padStart(4, '0')}`;

export class WriterWarmUp {
  private engine: SqliteEngine | null = null;
  private store: SqlStore | null = null;
  private done = 0;
  /** Per made-up user, its one device: what it was given (live items) and its cursor. */
  private readonly devices = new Map<string, { n: number; obtained: ObtainedTracker; cursor: number }>();
  /** The users whose device has items it has not ACKed yet. */
  private readonly dirty = new Set<string>();
  private closed = false;

  /** `schemaFrom`: the thread's connection to the server's database, whose schema the warm-up database copies. */
  constructor(private readonly schemaFrom: SqliteEngine, private readonly opts: { ringCapacity: number; batches?: number }) {}

  /** Runs one step; false once the warm-up is over (then everything of it is closed). */
  async step(): Promise<boolean> {
    if (this.closed) return false;
    try {
      if (!this.store) {
        const engine = new SqliteEngine(':memory:', { synchronous: 'normal', checkpointMs: 0 });
        this.engine = engine;
        await copySchema(this.schemaFrom, engine);
        const store = new SqlStore(engine, { ringCapacity: this.opts.ringCapacity });
        this.store = store;
        for (let i = 0; i < USERS; i++) await store.createUser({ id: uid(i), username: uid(i), passwordHash: 'x', nickname: 'x', createdAt: Date.now() });
        return true;
      }
      await this.batch(this.done++);
      if (this.done < (this.opts.batches ?? WARMUP_BATCHES)) return true;
      this.prepareStatements();
    } catch {
      // A warm-up that fails only leaves the code cold: never the thread's concern.
    }
    await this.close();
    return false;
  }

  private async batch(b: number): Promise<void> {
    const store = this.store!;
    const batch: AppendRequest[] = [];
    const now = Date.now();
    for (let j = 0; j < BATCH; j++) {
      // Pairs drawn from a pool that widens: each batch has first messages (new conversations) and messages into existing ones.
      const pool = Math.min(USERS / 2, 8 + b);
      const s = 2 * ((b * 7 + j * 13) % pool);
      const [from, to] = (b + j) % 2 === 0 ? [uid(s), uid(s + 1)] : [uid(s + 1), uid(s)];
      const body = { text: `warm-up ${b} ${j}` };
      batch.push({ sender: from, clientMsgId: `w${b}-${j}`, conv: `d:${uid(s)}:${uid(s + 1)}`, directMembers: [from, to], kind: 'text', body, bodyJson: JSON.stringify(body), time: now, id: `warmup-${b}-${j}` });
    }
    // As the real jobs arrive: through the wire format and a structured clone (postMessage), so
    // the objects have the shapes (hidden classes) the real ones will have.
    const requests = decodeBatch(structuredClone(encodeBatch(batch)));
    const outcomes = await store.appendMessages(requests);
    encodeOutcomes(requests, outcomes);
    // The ACKs as the gateway and AckService make them (gateway/ws-gateway.ts `ack`): each
    // user's device was given its live items — not its own messages, whose inbox items it
    // stores from the send's reply — and ACKs cumulatively up to its newest item, with the
    // segments of what it was given (ObtainedTracker.ackSegments): after the first, segments
    // start above 0, a user who sent and received has several, one who only sent has none.
    // Devices ACK on their own timers, so a flush holds about half of the devices that moved
    // (alternately): a flush then also acknowledges messages of senders whose own ACK is not in
    // it (the flush reads those senders' rows separately). A warm-up whose segments all started
    // at 0 and whose every sender acknowledged in the same flush left those branches of the
    // flush without type feedback, and the first real flushes deoptimized it (issue 23).
    for (const o of outcomes) {
      if (!o.ok) continue;
      for (const p of o.pointers) {
        const dev = this.device(p.userId);
        if (p.userId !== o.message.sender) dev.obtained.gave(p.inboxSeq);
        if (p.inboxSeq > dev.cursor) dev.cursor = p.inboxSeq;
        this.dirty.add(p.userId);
      }
    }
    const acks: DeviceAck[] = [];
    for (const userId of this.dirty) {
      const dev = this.device(userId);
      if (dev.n % 2 !== b % 2) continue;
      this.dirty.delete(userId);
      acks.push({ userId, deviceId: 'warmup', inboxSeq: dev.cursor, segments: dev.obtained.ackSegments(dev.cursor) });
    }
    if (acks.length > 0) await store.recordAcks(structuredClone(acks));
  }

  /**
   * The statements the warm-up prepared, prepared on the thread's connection to the server's
   * database too (cached, not run): the real jobs then find them in its statement cache from
   * their first use. The cache-miss branch of SqliteEngine.prepare/prepareRaw runs only on a
   * statement's first use — in the warm-up, before V8 gave those small functions type feedback —
   * so a first real use of a statement missing there deoptimized the flush that had inlined it
   * (the first real ACK flush: "Insufficient type feedback" in prepareRaw, issue 23). Also the
   * first real append and flush no longer prepare their statements.
   */
  private prepareStatements(): void {
    const { plain, raw } = this.engine!.statementTexts();
    for (const sql of plain) {
      try {
        this.schemaFrom.prepare(sql);
      } catch {
        // prepared at its first real use instead
      }
    }
    // Every length of the flush's read of messages counted from memory, not only those the warm-up's flushes used.
    for (const sql of new Set([...raw, ...knownReadTexts()])) {
      try {
        this.schemaFrom.prepareRaw(sql);
      } catch {
        // prepared at its first real use instead
      }
    }
  }

  private device(userId: string): { n: number; obtained: ObtainedTracker; cursor: number } {
    let d = this.devices.get(userId);
    if (!d) this.devices.set(userId, (d = { n: this.devices.size, obtained: new ObtainedTracker(), cursor: 0 }));
    return d;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const { store, engine } = this;
    this.store = null;
    this.engine = null;
    try {
      await store?.close();
      await engine?.close();
    } catch {
      // nothing to keep
    }
  }
}

/** The tables, indexes, views and triggers of `from` created in `to` (an empty database); FTS5's shadow tables come with their virtual table. */
export async function copySchema(from: SqliteEngine, to: SqliteEngine): Promise<void> {
  const rows = await from.all<{ type: string; name: string; sql: string }>("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
  const virtual = rows.filter((r) => r.type === 'table' && /^CREATE VIRTUAL TABLE/i.test(r.sql)).map((r) => `${r.name}_`);
  const order = ['table', 'index', 'view', 'trigger'];
  const wanted = rows.filter((r) => !(r.type === 'table' && virtual.some((v) => r.name.startsWith(v)))).sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
  for (const r of wanted) await to.exec(r.sql);
}
