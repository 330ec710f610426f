import { randomUUID } from 'node:crypto';
import type { Queryable, SqlEngine } from '../db/engine.ts';
import { writeAcksPostgres } from './ack-writer.ts';
import type { AppendOutcome, AppendRequest, DeviceAck } from './store.ts';

/**
 * The PostgreSQL store's start-up warm-up (issue 15: a cold node's first messages). A node that
 * has just started has no prepared statement on any pool connection (each text is described
 * first, a round trip with the pipeline stopped behind it), no connection open beyond the
 * migration's, and V8 has not compiled the store's append and ACK-flush code. Its first group
 * messages paid all of it at once, on every node of a cluster that started together
 * (docs/benchmarks.md, "three nodes vs one").
 *
 * `warmUpPostgres` opens `connections` transactions at once (one pool connection each) and in
 * each runs the store's real code: a made-up group of made-up users is created (appendTx with
 * a `create` effect), then `rounds` times a batch of posts on the fast path and their members'
 * ACK flush (writeAcksPostgres). Every transaction is **rollback-only**
 * (TransactionOptions.rollback): the commits inside those paths only send the pipeline, the end
 * is ROLLBACK, nothing is ever committed or visible to another session. The ids are fresh
 * random ones (`pgwarm-<uuid>-…`): no real row is read for update or locked. What it can touch
 * of the real database: the advisory ACK claims of its made-up users (a 32-bit hash of the id:
 * a real user whose key collides has an ACK flush wait, at most, for one warm-up transaction),
 * and the `search_docs.rid` sequence (BIGSERIAL: PostgreSQL does not give back values of a
 * rolled-back insert — a gap, as every rolled-back append leaves; rid is only the search
 * cursor's tie-break, never shown).
 */
export interface PgWarmUpOptions {
  /** Transactions (pool connections) at once. */
  connections: number;
  /** Post + ACK rounds per transaction. */
  rounds: number;
  /** Members of each made-up group. */
  members: number;
}

export const PG_WARMUP_DEFAULTS: PgWarmUpOptions = { connections: 16, rounds: 6, members: 12 };

type Append = (tx: Queryable, batch: AppendRequest[], fast: boolean) => Promise<AppendOutcome[]>;

export interface PgWarmUpResult {
  /** Messages the warm-up's transactions stored (and rolled back), ACK flushes they ran. */
  messages: number;
  ackFlushes: number;
  /** Errors of the transactions that failed. */
  failed: unknown[];
}

export async function warmUpPostgres(db: SqlEngine, append: Append, opts: PgWarmUpOptions = PG_WARMUP_DEFAULTS): Promise<PgWarmUpResult> {
  const tag = `pgwarm-${randomUUID()}`;
  const out: PgWarmUpResult = { messages: 0, ackFlushes: 0, failed: [] };
  await Promise.all(
    Array.from({ length: opts.connections }, (_, c) =>
      db.transaction((tx) => oneConnection(tx, append, `${tag}-${c}`, opts, out), { rollback: true }).catch((err: unknown) => {
        out.failed.push(err);
      }),
    ),
  );
  return out;
}

async function oneConnection(tx: Queryable, append: Append, tag: string, opts: PgWarmUpOptions, out: PgWarmUpResult): Promise<void> {
  const now = Date.now();
  const users = Array.from({ length: opts.members }, (_, i) => `${tag}-u${i}`);
  await tx.run(
    "INSERT INTO users (id, username, username_key, password_hash, nickname, created_at) SELECT x, x, x, '', x, ? FROM unnest(?::text[]) AS x",
    [now, users],
  );
  const conv = `g:${tag}`;
  const group = { name: tag, avatar: '', joinPolicy: 'approval' as const, inviteNeedsApproval: false, historyVisibility: 'since_join' as const, maxMembers: 10_000, superThreshold: 10_000 };
  const created = await append(tx, [{ sender: users[0]!, clientMsgId: `${tag}-create`, conv, kind: 'system', body: { event: 'group_created', data: { name: tag } }, time: now, id: `${tag}-m0`, effect: { op: 'create', group, members: users.slice(1) } }], false);
  const inbox = new Map<string, number>();
  const note = (outcomes: AppendOutcome[]): void => {
    for (const o of outcomes) {
      if (!o.ok) throw new Error(`warm-up append refused: ${o.error}`);
      out.messages++;
      for (const p of o.pointers) inbox.set(p.userId, Math.max(inbox.get(p.userId) ?? 0, p.inboxSeq));
    }
  };
  note(created);
  for (let r = 0; r < opts.rounds; r++) {
    // As the owner's batches come: one or two posts, from different members.
    const batch: AppendRequest[] = [];
    for (let j = 0; j < 1 + (r % 2); j++) {
      const sender = users[(r * 3 + j) % users.length]!;
      const body = { text: `warm-up ${r} ${j}` };
      batch.push({ sender, clientMsgId: `${tag}-${r}-${j}`, conv, kind: 'text', body, bodyJson: JSON.stringify(body), time: Date.now(), id: `${tag}-m${r}-${j}` });
    }
    const outcomes = await append(tx, batch, true);
    note(outcomes);
    const senders = new Set(batch.map((b) => b.sender));
    const acks: DeviceAck[] = [];
    for (const u of users) {
      if (senders.has(u)) continue;
      const inboxSeq = inbox.get(u) ?? 0;
      acks.push({ userId: u, deviceId: 'd', inboxSeq, segments: [{ from: 0, to: inboxSeq }] });
    }
    await writeAcksPostgres(tx, acks);
    out.ackFlushes++;
  }
}
