import type { Queryable } from '../db/engine.ts';
import { warm, type NoopStatement } from '../db/prepared.ts';
import { isGroupConv } from './rows.ts';
import { PIPELINE_COMMIT, PIPELINE_FLUSH } from '../db/dialect.ts';
import type { AckOutcome, DeviceAck } from './store.ts';
import { insertRows, rowsSql, type RowsSql } from './append-writer.ts';
import type { RecentPointers } from './recent-pointers.ts';

/**
 * ACK flushes on PostgreSQL (issue 15). A flush moves the acknowledging users' delivered marks,
 * the senders' entries (delivered_seq, with a list version from the sender's user row) and the
 * group delivered counts. The user rows are the ones every append to those users' conversations
 * bumps, so a flush must hold them as briefly as an append does: for no round trip to the node,
 * and only the senders' rows. The marks are in `delivery_marks` (migration 0023; the mark is the
 * greater of that and the legacy `users.delivered_inbox_seq`), not on the acknowledging users'
 * rows: a node's flush of a busy group's ACKs locks no member row an append to the group needs.
 *
 * - One flush at a time per acknowledging user, cluster-wide: the flush claims the
 *   transaction-scoped advisory locks (ACK_LOCK_SPACE, hash of the user id) of its users, all in
 *   one statement, in ascending key order (no deadlock between flushes: nothing else takes these
 *   keys, and every other lock of a flush comes after them). A user's delivered mark is written
 *   only by ACK flushes (SqlStore.recordAcks / markDelivered), so under the user's claim the mark
 *   read is the one to build on, without a row lock (inbox_seq only grows; the copy read is a
 *   bound); each recipient therefore raises each group message's count at most once. Flushes of
 *   different users (typically: of users connected to different nodes) do not wait for each
 *   other. A flush takes at most ACK_CLAIMS_PER_FLUSH claims (SqlStore splits larger ones).
 * - What several flushes may write at once, exact in SQL under row locks held for no round trip:
 *   a sender's entries (the sender's user row is locked first, in id order; which entries move,
 *   the list-version bump and the versions are decided by the statements from the values they
 *   find, so a flush that lost the race to another user's flush moves nothing and reports
 *   nothing), and the group delivered counts (`delivered_count + n`, the message rows locked in
 *   (conv, seq) order first).
 * - Two rounds: (1) claims + one statement that reads the marks, makes the newly acknowledged
 *   ranges of them and reads what they cover with the senders' entries (ACK_SQL_POSTGRES.plan); (2) every
 *   write, pipelined, ending in its COMMIT, the senders' user rows locked in id order (as appends
 *   lock them), so they are held only while the server runs the pipeline.
 *   The claims are held for one round trip to the node.
 *
 * Same outcome as the generic recordAcks when flushes do not overlap (the Store contract runs
 * on both engines).
 */
export const ACK_LOCK_SPACE = 4_242_015;

/** Most users (advisory claims) one flush transaction takes; PostgreSQL's shared lock table is
 *  max_locks_per_transaction × max_connections entries (6 400 by default). */
export const ACK_CLAIMS_PER_FLUSH = 256;

/** The advisory key of a user's ACK claim: FNV-1a (32 bits, signed) of the id. Two users that
 *  share a key only serialize each other's flushes. */
export function ackClaimKey(userId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** The claim keys of a flush's users, deduplicated, ascending (the order every flush takes them in). */
export function ackClaimKeys(userIds: readonly string[]): number[] {
  return [...new Set(userIds.map(ackClaimKey))].sort((x, y) => x - y);
}

/**
 * `acks` split so that each part has at most `max` users, a user's ACKs all in one part
 * (PostgreSQL: one transaction per part, see ACK_CLAIMS_PER_FLUSH).
 */
export function splitAcksByUsers(acks: DeviceAck[], max = ACK_CLAIMS_PER_FLUSH): DeviceAck[][] {
  const byUser = new Map<string, DeviceAck[]>();
  for (const a of acks) {
    const list = byUser.get(a.userId);
    if (list) list.push(a);
    else byUser.set(a.userId, [a]);
  }
  if (byUser.size <= max) return [acks];
  const parts: DeviceAck[][] = [];
  let part: DeviceAck[] = [];
  let users = 0;
  for (const list of byUser.values()) {
    if (users === max) {
      parts.push(part);
      part = [];
      users = 0;
    }
    part.push(...list);
    users++;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

type MarkRow = { id: string; inbox_seq: number | string; delivered_inbox_seq: number | string };
type UserRow = MarkRow & { conv_version: number | string };
type PlanRow = { kind: 'm' | 'r' | 'c'; k: number | string; uid: string | null; a: number | string | null; b: number | string | null; conv: string | null; sender: string | null; seq: number | string | null; dseq: number | string | null };
type RangeRow = { ord: number | string; conv: string; sender: string; seq: number | string; delivered_seq: number | string | null };
type CountRow = { conv: string; seq: number | string; sender: string; count: number | string };

/**
 * The items of one user's newly acknowledged inbox range (uid, lo, hi]: a subquery for
 * `CROSS JOIN LATERAL`, one per range (COVERED adds the senders). `OFFSET 0` keeps PostgreSQL
 * from flattening it into the outer join, so each range is read through the inbox primary key
 * (a short index range per user) whatever the planner estimates. Written as plain joins, the planner took a hash join over a sequential
 * scan of the whole inbox (and messages) for the flush's ranges whenever the tables were small
 * enough next to the number of ranges, as in any young or small deployment (a 90-member group:
 * up to ~20 000 inbox rows for 30 ranges, more for more); the `'g:'` filter of ACK_SQL_POSTGRES.raise made
 * its estimate smaller still — every flush then read every inbox row, and a cluster, with a
 * flush per node per message, read it once per node (issue 15: bench/cluster.ts's
 * "inbox rows read per message").
 */
const RANGE_ITEMS = (uid: string, lo: string, hi: string, extra: string): string =>
  `SELECT i.conv_id, i.seq FROM inbox i WHERE i.user_id = ${uid} AND i.inbox_seq > ${lo} AND i.inbox_seq <= ${hi} ${extra} OFFSET 0`;

/**
 * CTEs over the ranges `src` (columns uid, lo, hi and the key `k`): `ii`, every item of every
 * range (RANGE_ITEMS); `im`, their messages' senders and kinds, probed once per distinct
 * message; `ic`, per range, conversation and other sender, the newest seq; `ie`, those
 * senders' entries, probed once per distinct (conversation, sender). A group message's ACKs
 * arrive in one flush from most of its members, so its ranges cover the same message: probed
 * per item, as before, messages and entries were read once per member (issue 15, branch pgc15:
 * two of the plan statement's three index probes per range). Every probe is a lateral subquery
 * with `OFFSET 0` (read by primary key whatever the estimates); the joins between the CTEs are
 * over the few rows they hold.
 */
const COVERED = (src: string, k: string, extra = ''): string => `
    ii AS MATERIALIZED (SELECT ${k} AS k, src.uid, i.conv_id, i.seq FROM ${src} src CROSS JOIN LATERAL (${RANGE_ITEMS('src.uid', 'src.lo', 'src.hi', extra)}) i),
    im AS MATERIALIZED (SELECT d.conv_id, d.seq, m.sender_id, m.kind FROM (SELECT DISTINCT conv_id, seq FROM ii) d
      CROSS JOIN LATERAL (SELECT m.sender_id, m.kind FROM messages m WHERE m.conv_id = d.conv_id AND m.seq = d.seq OFFSET 0) m),
    ic AS MATERIALIZED (SELECT ii.k, ii.conv_id, im.sender_id, MAX(ii.seq) AS seq FROM ii JOIN im ON im.conv_id = ii.conv_id AND im.seq = ii.seq
      WHERE im.sender_id <> ii.uid GROUP BY ii.k, ii.conv_id, im.sender_id),
    ie AS MATERIALIZED (SELECT d.conv_id, d.sender_id, e.delivered_seq FROM (SELECT DISTINCT conv_id, sender_id FROM ic) d
      CROSS JOIN LATERAL (SELECT e.delivered_seq FROM entries e WHERE e.user_id = d.sender_id AND e.conv_id = d.conv_id OFFSET 0) e)`;

/** The ACK flush's statements; exported for the plan test (test/store-postgres-ack-plans.test.ts). */
export const ACK_SQL_POSTGRES = {
  /** The users' claims, in the order of the array (ascending keys, see ackClaimKeys). */
  claim: 'SELECT pg_advisory_xact_lock(?::int, k) FROM unnest(?::int[]) AS k',
  /**
   * Rounds 1 and 2 in one statement (one snapshot, right after the claim): the marks (kind 'm'),
   * the ranges the segments make of them (kind 'r', numbered k from 1 in segment order; the marks
   * move as in writeAcksPostgres: over a segment's gap to min(from, inbox), then to
   * min(to, inbox), never back — a running maximum per user), and what each range covers
   * (kind 'c', as ACK_SQL_POSTGRES.ranges). The node recomputes the ranges from the marks and uses the 'c'
   * rows only when both agree; otherwise it reads them with ACK_SQL_POSTGRES.ranges.
   */
  plan: `WITH u AS MATERIALIZED (SELECT u.id, u.inbox_seq, GREATEST(u.delivered_inbox_seq, COALESCE(d.delivered_inbox_seq, 0)) AS delivered_inbox_seq
      FROM users u LEFT JOIN delivery_marks d ON d.user_id = u.id WHERE u.id = ANY(?::text[])),
    s AS (
      SELECT x.ord, x.uid, u.delivered_inbox_seq AS start, CASE WHEN x.f > 0 THEN LEAST(x.f, u.inbox_seq) ELSE 0 END AS g, LEAST(x.t, u.inbox_seq) AS up
      FROM unnest(?::text[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS x(uid, f, t, ord) JOIN u ON u.id = x.uid),
    w AS (
      SELECT s.ord, s.uid, s.up, GREATEST(s.g, s.start,
        COALESCE(MAX(GREATEST(s.g, s.up)) OVER (PARTITION BY s.uid ORDER BY s.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS lo
      FROM s),
    r AS (SELECT row_number() OVER (ORDER BY w.ord) AS k, w.uid, w.lo, w.up AS hi FROM w WHERE w.up > w.lo),${COVERED('r', 'src.k')}
    SELECT 'm' AS kind, 0::bigint AS k, id AS uid, inbox_seq AS a, delivered_inbox_seq AS b, NULL::text AS conv, NULL::text AS sender, NULL::bigint AS seq, NULL::bigint AS dseq FROM u
    UNION ALL SELECT 'r', r.k, r.uid, r.lo, r.hi, NULL, NULL, NULL, NULL FROM r
    UNION ALL SELECT 'c', ic.k, NULL, NULL, NULL, ic.conv_id, ic.sender_id, ic.seq, ie.delivered_seq
      FROM ic LEFT JOIN ie ON ie.conv_id = ic.conv_id AND ie.sender_id = ic.sender_id
    ORDER BY kind, k, conv, sender`,
  /** Per range (ordinality), the newest seq per (conversation, other sender), with that sender's entry state. */
  ranges: `WITH x AS MATERIALIZED (SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS x(uid, lo, hi, ord)),${COVERED('x', 'src.ord')}
    SELECT ic.k AS ord, ic.conv_id AS conv, ic.sender_id AS sender, ic.seq, ie.delivered_seq
    FROM ic LEFT JOIN ie ON ie.conv_id = ic.conv_id AND ie.sender_id = ic.sender_id
    ORDER BY ic.k, ic.conv_id, ic.sender_id`,
  devices: `INSERT INTO devices (user_id, device_id, acked_inbox_seq) SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[])
    ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = GREATEST(devices.acked_inbox_seq, excluded.acked_inbox_seq)`,
  lockUsers: 'SELECT id FROM users WHERE id = ANY(?::text[]) ORDER BY id FOR UPDATE',
  /**
   * The marks (migration 0023): in their own table, not on the users rows that appends bump,
   * so moving them locks no user row. Only ACK flushes write them, under the users' claims.
   */
  marksSet: `INSERT INTO delivery_marks (user_id, delivered_inbox_seq) SELECT * FROM unnest(?::text[], ?::bigint[])
    ON CONFLICT (user_id) DO UPDATE SET delivered_inbox_seq = GREATEST(delivery_marks.delivered_inbox_seq, excluded.delivered_inbox_seq)`,
  /**
   * The senders' list versions, raised by the entry advances (x: one row per advance, the
   * node's plan) that still move an entry: the sender's row is locked (ACK_SQL_POSTGRES.lockUsers), so no
   * other flush moves the sender's entries between this statement and ACK_SQL_POSTGRES.entries.
   */
  bump: `UPDATE users u SET conv_version = u.conv_version + c.n
    FROM (SELECT x.id, COUNT(*) AS n FROM unnest(?::text[], ?::text[], ?::bigint[]) AS x(id, conv, seq)
      JOIN entries e ON e.user_id = x.id AND e.conv_id = x.conv AND e.delivered_seq < x.seq GROUP BY x.id) AS c
    WHERE u.id = c.id`,
  /**
   * The entries that move, to their newest advanced seq, versioned as the generic path does
   * (the newest advance of a sender gets its new conv_version, each earlier one one less per
   * moving advance after it); returns each moved entry with the delivered_seq it had.
   */
  entries: `WITH x AS (
      SELECT x.id, x.conv, x.seq, x.k, e.delivered_seq AS was,
        COUNT(*) OVER (PARTITION BY x.id) - ROW_NUMBER() OVER (PARTITION BY x.id ORDER BY x.k) AS off
      FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[]) AS x(id, conv, seq, k)
      JOIN entries e ON e.user_id = x.id AND e.conv_id = x.conv WHERE e.delivered_seq < x.seq),
    y AS (SELECT DISTINCT ON (id, conv) id, conv, seq, was, off FROM x ORDER BY id, conv, k DESC)
    UPDATE entries e SET delivered_seq = y.seq, version = u.conv_version - y.off
    FROM y, users u
    WHERE e.user_id = y.id AND e.conv_id = y.conv AND u.id = y.id AND e.delivered_seq < y.seq
    RETURNING y.id AS sender, y.conv AS conv, y.was AS was`,
  /**
   * Every group range of the flush in one statement: per message, how many of the ranges cover
   * it (a user's ranges in one flush are disjoint, so that is how many recipients stored it
   * first now), added at once; the final count per message is returned. The message rows are
   * locked in (conv, seq) order first: flushes of different users raise the same messages
   * concurrently, and a lock order that followed the join's plan could deadlock.
   */
  raise: `WITH x AS MATERIALIZED (SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS x(uid, lo, hi)),${COVERED('x', '0', "AND substr(i.conv_id, 1, 2) = 'g:'")},
    r AS (
      SELECT ii.conv_id, ii.seq, COUNT(*) AS n FROM ii JOIN im ON im.conv_id = ii.conv_id AND im.seq = ii.seq
      WHERE im.sender_id <> ii.uid AND im.kind <> 'system'
      GROUP BY ii.conv_id, ii.seq),
    l AS MATERIALIZED (
      SELECT m.conv_id, m.seq, r.n FROM messages m JOIN r ON m.conv_id = r.conv_id AND m.seq = r.seq
      ORDER BY m.conv_id, m.seq FOR NO KEY UPDATE OF m)
    UPDATE messages m SET delivered_count = m.delivered_count + l.n
    FROM l
    WHERE m.conv_id = l.conv_id AND m.seq = l.seq
    RETURNING m.conv_id AS conv, m.seq, m.sender_id AS sender, m.delivered_count AS count`,
};

/** Every statement with no-op parameters: prepared before the claim (db/prepared.ts). */
const NOOPS: NoopStatement[] = [
  [ACK_SQL_POSTGRES.plan, [[], [], [], []]],
  [ACK_SQL_POSTGRES.ranges, [[], [], []]],
  [ACK_SQL_POSTGRES.devices, [[], [], []]],
  [ACK_SQL_POSTGRES.lockUsers, [[]]],
  [ACK_SQL_POSTGRES.marksSet, [[], []]],
  [ACK_SQL_POSTGRES.bump, [[], [], []]],
  [ACK_SQL_POSTGRES.entries, [[], [], [], []]],
  [ACK_SQL_POSTGRES.raise, [[], [], []]],
];

const byId = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

// The flushes' comparators and helpers are module functions, not closures made per flush
// (issue 23): V8 keeps a closure's optimized code only weakly, so a closure made anew by every
// flush was compiled again after each garbage collection that dropped that code (the writer
// thread's trace: the ACK flush's user read and sort comparator, ~17 compilations each in 9 s).
const byUserThenDevice = (x: DeviceAck, y: DeviceAck): number => byId(x.userId, y.userId) || byId(x.deviceId, y.deviceId);
const byConvThenSender = (x: { conv: string; sender: string }, y: { conv: string; sender: string }): number => byId(x.conv, y.conv) || byId(x.sender, y.sender);
const byConvThenSeq = (x: { conv: string; seq: number }, y: { conv: string; seq: number }): number => byId(x.conv, y.conv) || x.seq - y.seq;

interface Mark {
  inbox: number;
  delivered: number;
  start: number;
}

/** One newly acknowledged inbox range of a user: (from, upTo]. */
interface Range {
  user: string;
  from: number;
  upTo: number;
}

/**
 * The marks move in memory, ACK by ACK and segment by segment, as the generic path moves them;
 * returns the ranges of inbox items each ACK newly covers.
 */
function moveMarks(sorted: DeviceAck[], marks: Map<string, Mark>): Range[] {
  const ranges: Range[] = [];
  for (const a of sorted) {
    const m = marks.get(a.userId);
    if (!m) continue;
    for (const seg of a.segments ?? [{ from: 0, to: a.inboxSeq }]) {
      // Items the device never obtained (a full sync's gap): the mark moves over them, raising nothing.
      if (seg.from > 0 && m.delivered < seg.from && m.delivered < m.inbox) m.delivered = Math.min(seg.from, m.inbox);
      const upTo = Math.min(seg.to, m.inbox);
      if (upTo <= m.delivered) continue;
      ranges.push({ user: a.userId, from: m.delivered, upTo });
      m.delivered = upTo;
    }
  }
  return ranges;
}

/**
 * Record device ACKs (see Store.recordAcks) inside `tx`, a PostgreSQL transaction.
 * `markDelivered` is the same with one ACK and no device row.
 */
export async function writeAcksPostgres(tx: Queryable, acks: DeviceAck[], opts: { devices: boolean } = { devices: true }): Promise<AckOutcome> {
  const sorted = [...acks].sort(byUserThenDevice);
  const userIds = [...new Set(sorted.map((a) => a.userId))];

  // 1. Claim the users, then read the marks (a user's mark moves only under the user's claim)
  //    and, in the same statement, what the ranges they make cover: the claims are held for one
  //    round trip.
  warm(tx, NOOPS);
  const segs: [string, number, number][] = [];
  for (const a of sorted) for (const seg of a.segments ?? [{ from: 0, to: a.inboxSeq }]) segs.push([a.userId, seg.from, seg.to]);
  const claimed = tx.run(ACK_SQL_POSTGRES.claim, [ACK_LOCK_SPACE, ackClaimKeys(userIds)]);
  const planned = tx.all<PlanRow>(ACK_SQL_POSTGRES.plan, [userIds, segs.map((x) => x[0]), segs.map((x) => x[1]), segs.map((x) => x[2])]);
  // Claims and plan leave now, not at the end of the node's turn (db/dialect.ts PIPELINE_FLUSH).
  tx.run(PIPELINE_FLUSH).catch(() => {});
  await claimed;
  const plan = await planned;
  const marks = new Map<string, Mark>();
  for (const r of plan) {
    if (r.kind !== 'm') continue;
    const d = Number(r.b);
    marks.set(r.uid!, { inbox: Number(r.a), delivered: d, start: d });
  }

  const ranges = moveMarks(sorted, marks);

  // 2. What the ranges cover: per range, the newest seq per (conversation, other sender) — from
  //    the plan when its ranges are these (always, unless the two computations ever disagree).
  const sqlRanges = plan.filter((r) => r.kind === 'r');
  const agree = sqlRanges.length === ranges.length && sqlRanges.every((r, i) => Number(r.k) === i + 1 && r.uid === ranges[i]!.user && Number(r.a) === ranges[i]!.from && Number(r.b) === ranges[i]!.upTo);
  const covered: RangeRow[] = !agree
    ? await tx.all<RangeRow>(ACK_SQL_POSTGRES.ranges, [ranges.map((r) => r.user), ranges.map((r) => r.from), ranges.map((r) => r.upTo)])
    : plan.filter((r) => r.kind === 'c').map((r) => ({ ord: r.k, conv: r.conv!, sender: r.sender!, seq: r.seq!, delivered_seq: r.dseq }));
  const out: AckOutcome = { delivered: [], counts: [] };
  /** (sender, conv) → delivered_seq as it moves; absent: the sender has no entry. */
  const entrySeq = new Map<string, number>();
  for (const r of covered) if (r.delivered_seq !== null) entrySeq.set(`${r.sender}\u0000${r.conv}`, Number(r.delivered_seq));
  /** sender → entry advances so far; one row per advance: [sender, conv, seq, advance number], with its update. */
  const bumps = new Map<string, number>();
  const advances: [string, string, number, number][] = [];
  const proposed: AckOutcome['delivered'] = [];
  const groupRanges: Range[] = [];
  let at = 0;
  ranges.forEach((range, i) => {
    let group = false;
    for (; at < covered.length && Number(covered[at]!.ord) === i + 1; at++) {
      const r = covered[at]!;
      const seq = Number(r.seq);
      if (isGroupConv(r.conv)) group = true;
      const key = `${r.sender}\u0000${r.conv}`;
      const cur = entrySeq.get(key);
      if (cur === undefined || cur >= seq) continue;
      entrySeq.set(key, seq);
      const n = (bumps.get(r.sender) ?? 0) + 1;
      bumps.set(r.sender, n);
      advances.push([r.sender, r.conv, seq, n]);
      proposed.push({ conv: r.conv, seq, sender: r.sender, by: range.user });
    }
    if (group) groupRanges.push(range);
  });

  // 3. Every write in one pipeline: device rows, the group counts (message rows in (conv, seq)
  //    order), then the user rows locked in id order and what hangs off them.
  const writes: Promise<unknown>[] = [];
  if (opts.devices && sorted.length > 0) {
    const top = new Map<string, DeviceAck>();
    for (const a of sorted) {
      const key = `${a.userId}\u0000${a.deviceId}`;
      const prev = top.get(key);
      if (!prev || prev.inboxSeq < a.inboxSeq) top.set(key, a);
    }
    const ds = [...top.values()];
    writes.push(tx.run(ACK_SQL_POSTGRES.devices, [ds.map((a) => a.userId), ds.map((a) => a.deviceId), ds.map((a) => a.inboxSeq)]));
  }
  // The group counts before the user rows: the message rows the counts raise are shared with
  // the other nodes' flushes (each waits for the one before it), and the statement itself takes
  // a while; ahead of the user rows, an append needing those rows waits for neither.
  const raised: Promise<CountRow[]> =
    groupRanges.length > 0 ? tx.all<CountRow>(ACK_SQL_POSTGRES.raise, [groupRanges.map((r) => r.user), groupRanges.map((r) => r.from), groupRanges.map((r) => r.upTo)]) : Promise.resolve([]);
  // The marks are not on the user rows (migration 0023): only the senders whose entries move
  // are locked, in id order.
  const moved = [...marks.entries()].filter(([, m]) => m.delivered > m.start);
  if (moved.length > 0) writes.push(tx.run(ACK_SQL_POSTGRES.marksSet, [moved.map(([id]) => id), moved.map(([, m]) => m.delivered)]));
  const locked = [...bumps.keys()].sort(byId);
  if (locked.length > 0) writes.push(tx.run(ACK_SQL_POSTGRES.lockUsers, [locked]));
  // The entries' delivered_seq read by the plan may be behind (another user's flush moved it
  // since): the statements move only what still moves, and report what it was.
  let movedEntries: Promise<{ sender: string; conv: string; was: number | string }[]> = Promise.resolve([]);
  if (advances.length > 0) {
    writes.push(tx.run(ACK_SQL_POSTGRES.bump, [advances.map((x) => x[0]), advances.map((x) => x[1]), advances.map((x) => x[2])]));
    movedEntries = tx.all(ACK_SQL_POSTGRES.entries, [advances.map((x) => x[0]), advances.map((x) => x[1]), advances.map((x) => x[2]), advances.map((x) => x[3])]);
    writes.push(movedEntries);
  }
  if (writes.length > 0 || groupRanges.length > 0) writes.push(tx.run(PIPELINE_COMMIT));
  const [counts] = await Promise.all([raised, Promise.all(writes)]);
  const was = new Map<string, number>();
  for (const e of await movedEntries) was.set(`${e.sender}\u0000${e.conv}`, Number(e.was));
  for (const d of proposed) {
    const from = was.get(`${d.sender}\u0000${d.conv}`);
    if (from !== undefined && d.seq > from) out.delivered.push(d);
  }
  counts.sort((x, y) => byId(x.conv, y.conv) || Number(x.seq) - Number(y.seq));
  for (const c of counts) out.counts.push({ conv: c.conv, seq: Number(c.seq), sender: c.sender, count: Number(c.count) });
  return out;
}

/**
 * SQLite statements of an ACK flush that read (issue 23). What the ranges cover is read in one
 * statement for all the ranges of the flush, that counts in SQL per message how many ranges
 * cover it and which comes first, and reads each message's sender, kind and the sender's entry
 * once — not one row per (recipient, message) joined to `messages`, nor one read per sender and
 * conversation. The writes are multi-row statements (LITE_ROWS).
 */
const LITE = {
  /** The acknowledging users' rows (marks, list versions), and then the senders' among the rest. */
  users: 'SELECT id, inbox_seq, delivered_inbox_seq, conv_version FROM users WHERE id IN (SELECT value FROM json_each(?))',
  /**
   * Every message of another user the ranges (a JSON array of [user, from, upTo], numbered from
   * 1 in array order) cover: how many ranges cover it (`n`), the first that does (`first`), its
   * sender and kind, and the sender's entry's delivered_seq as stored (`has_entry` 0: the sender
   * has no entry; the flush writes entries only after all its reads, so this is what a read of
   * the entry would find). A pointer to the user's own message is left out by its `mine` flag
   * (migration 0024), not by its sender; the grouping is materialized first, so `messages` is
   * read once per message, not once per pointer.
   */
  covered: `WITH r AS (SELECT key + 1 AS ord, value->>0 AS uid, value->>1 AS lo, value->>2 AS hi FROM json_each(?)),
    c AS MATERIALIZED (SELECT i.conv_id AS conv, i.seq AS seq, COUNT(*) AS n, MIN(r.ord) AS first
      FROM r JOIN inbox i ON i.user_id = r.uid AND i.inbox_seq > r.lo AND i.inbox_seq <= r.hi
      WHERE i.mine = 0 GROUP BY i.conv_id, i.seq)
    SELECT c.conv, c.seq, c.n, c.first, m.sender_id AS sender, m.kind, e.delivered_seq AS dseq, e.user_id IS NOT NULL AS has_entry
    FROM c JOIN messages m ON m.conv_id = c.conv AND m.seq = c.seq
      LEFT JOIN entries e ON e.user_id = m.sender_id AND e.conv_id = c.conv`,
  /** Whether any retention purge ever removed pointers (then the users' marks are read: purged). */
  anyPurge: 'SELECT 1 AS x FROM inbox_purge LIMIT 1',
  purged: 'SELECT user_id, purged_inbox_seq FROM inbox_purge WHERE user_id IN (SELECT value FROM json_each(?))',
  raise: 'UPDATE messages SET delivered_count = delivered_count + ? WHERE conv_id = ? AND seq = ? RETURNING sender_id AS sender, delivered_count AS count',
};

/**
 * As LITE.covered, for the messages counted from the store's RecentPointers instead of `inbox`:
 * each message's sender and kind and the sender's entry, the messages given as bound rows
 * [i, conv, seq] (`i`: the message's index in the caller's list, returned in the `n` and `first`
 * columns for the caller to fill in) of one multi-row VALUES, k read first (CROSS JOIN), in its
 * order. Bound values, not one JSON array: the JSON form (`json_each` and four `->>` per message)
 * was ~40 % of this read's CPU and ~6 % of the writer thread's in the saturated 1:1 bench (issue
 * 23, branch wr23).
 */
const KNOWN: RowsSql = {
  head: 'WITH k(i, conv, seq) AS (VALUES',
  width: 3,
  tail: `) SELECT k.conv, k.seq, k.i AS n, k.i AS first, m.sender_id AS sender, m.kind, e.delivered_seq AS dseq, e.user_id IS NOT NULL AS has_entry
    FROM k CROSS JOIN messages m ON m.conv_id = k.conv AND m.seq = k.seq
      LEFT JOIN entries e ON e.user_id = m.sender_id AND e.conv_id = k.conv`,
};

/** Rows per KNOWN statement: a flush's messages are cut into these fixed lengths (five prepared texts). */
const KNOWN_CHUNKS = [256, 64, 16, 4, 1];

/** The SQLite ACK flush's reads of messages counted from memory, every length (the writer's warm-up prepares them all). */
export function knownReadTexts(): string[] {
  return KNOWN_CHUNKS.map((n) => rowsSql(KNOWN, n));
}

/** A row of LITE.covered, as values in its column order (Queryable.values: no object per covered message). */
type CoveredRow = [conv: string, seq: number, n: number, first: number, sender: string, kind: string, dseq: number | null, has_entry: number];

/**
 * The SQLite flush's writes as multi-row statements (issue 23), every value absolute: the flush
 * read the user rows (marks and list versions) in its own transaction and SQLite has one writer,
 * so nothing moved them since — as the append's flush does (AppendWriter.flush). One statement
 * per up to 64 rows instead of one per device, user and entry.
 */
const LITE_ROWS = {
  /** [user, device, acked_inbox_seq] */
  devices: {
    head: 'INSERT OR FAIL INTO devices (user_id, device_id, acked_inbox_seq) VALUES',
    width: 3,
    tail: ` ON CONFLICT (user_id, device_id) DO UPDATE SET acked_inbox_seq = CASE WHEN excluded.acked_inbox_seq > devices.acked_inbox_seq THEN excluded.acked_inbox_seq ELSE devices.acked_inbox_seq END`,
  },
  /** [id, delivered_inbox_seq, conv_version] */
  users: { head: 'UPDATE OR FAIL users SET delivered_inbox_seq = x.column2, conv_version = x.column3 FROM (VALUES', width: 3, tail: ') AS x WHERE users.id = x.column1' },
  /** [user, conv, delivered_seq, version] */
  entries: {
    head: 'UPDATE OR FAIL entries SET delivered_seq = x.column3, version = x.column4 FROM (VALUES',
    width: 4,
    tail: ') AS x WHERE entries.user_id = x.column1 AND entries.conv_id = x.column2 AND entries.delivered_seq < x.column3',
  },
} satisfies Record<string, RowsSql>;

/**
 * What `ranges` cover (rows of LITE.covered, `first` numbered from 1 in `ranges`' order): a range
 * whose pointers the store's RecentPointers holds, all of them and above every trim and purge
 * (see store/recent-pointers.ts), is counted from there; the others are read from `inbox`
 * (LITE.covered). A message covered by both kinds of range gets one row (counts added, the
 * first range of either).
 */
async function readCovered(tx: Queryable, ranges: Range[], marks: Map<string, Mark>, recent: RecentPointers | undefined, ring: number | undefined): Promise<CoveredRow[]> {
  if (!recent || ring === undefined) return tx.values<CoveredRow>(LITE.covered, [JSON.stringify(ranges.map((r) => [r.user, r.from, r.upTo]))]);
  let purged: Map<string, number> | null = null;
  if ((await tx.get(LITE.anyPurge)) !== undefined) {
    purged = new Map();
    const users = [...new Set(ranges.map((r) => r.user))];
    for (const r of await tx.all<{ user_id: string; purged_inbox_seq: number | string }>(LITE.purged, [JSON.stringify(users)])) purged.set(r.user_id, Number(r.purged_inbox_seq));
  }
  /** conv → seq → [n, first] of the messages counted from memory. */
  const counted = new Map<string, Map<number, [number, number]>>();
  let ord = 0;
  let lastConv: string | null = null;
  let lastSeqs: Map<number, [number, number]> | null = null;
  const add = (conv: string, seq: number): void => {
    if (conv !== lastConv) {
      lastConv = conv;
      lastSeqs = counted.get(conv) ?? null;
      if (!lastSeqs) counted.set(conv, (lastSeqs = new Map()));
    }
    const c = lastSeqs!.get(seq);
    if (c) c[0]++;
    else lastSeqs!.set(seq, [1, ord]);
  };
  /** The ranges read from `inbox`, and their numbers in `ranges` (from 1). */
  const fromDb: [string, number, number][] = [];
  const dbOrd: number[] = [];
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    ord = i + 1;
    const above = r.from >= marks.get(r.user)!.inbox - ring && r.from >= (purged?.get(r.user) ?? 0);
    if (above && recent.each(r.user, r.from, r.upTo, add)) continue;
    fromDb.push([r.user, r.from, r.upTo]);
    dbOrd.push(i + 1);
  }
  const rows: CoveredRow[] = [];
  if (fromDb.length > 0) {
    for (const row of await tx.values<CoveredRow>(LITE.covered, [JSON.stringify(fromDb)])) {
      row[3] = dbOrd[Number(row[3]) - 1]!;
      const mem = counted.get(row[0])?.get(Number(row[1]));
      if (mem) {
        row[2] = Number(row[2]) + mem[0];
        row[3] = Math.min(row[3], mem[1]);
        counted.get(row[0])!.delete(Number(row[1]));
      }
      rows.push(row);
    }
  }
  const keys: [string, number, number, number][] = [];
  for (const [conv, seqs] of counted) for (const [seq, [n, first]] of seqs) keys.push([conv, seq, n, first]);
  let i = 0;
  for (const size of KNOWN_CHUNKS) {
    for (; keys.length - i >= size; i += size) {
      const params: unknown[] = [];
      for (let k = i; k < i + size; k++) params.push(k, keys[k]![0], keys[k]![1]);
      for (const row of await tx.values<CoveredRow>(rowsSql(KNOWN, size), params)) {
        const key = keys[Number(row[2])]!;
        row[2] = key[2];
        row[3] = key[3];
        rows.push(row);
      }
    }
  }
  return rows;
}

/** The user rows of `ids` read into `marks` (their delivered marks) and `convVersion` (conv_version as read). */
async function readUsersSqlite(tx: Queryable, ids: string[], marks: Map<string, Mark>, convVersion: Map<string, number>): Promise<void> {
  for (const r of await tx.all<UserRow>(LITE.users, [JSON.stringify(ids)])) {
    const d = Number(r.delivered_inbox_seq);
    marks.set(r.id, { inbox: Number(r.inbox_seq), delivered: d, start: d });
    convVersion.set(r.id, Number(r.conv_version));
  }
}

/**
 * Record device ACKs (see Store.recordAcks) inside `tx`, a SQLite transaction: the marks move
 * in memory as in writeAcksPostgres (SQLite has one writer at a time: the marks read at the
 * start are the ones to build on). Each message newly covered by the flush is raised once.
 * `markDelivered` is the same with one ACK and no device row.
 *
 * What the ranges cover is read per message, not per (range, message) (LITE.covered): a message
 * newly reaches, in this flush, every range that covers it (a user's own messages are left out
 * by the pointers' `mine` flag); the first of them (in range order) is the one that can move the
 * sender's entry to it — a later range that covers it finds the entry there already. So per
 * range i the entry advances are those of the messages whose first range is i: the same
 * advances, in the same order, with the same `by`, as walking every range's items.
 *
 * `recent` (the store's RecentPointers) and `ring` (its ringCapacity): ranges whose pointers the
 * store's appends committed and still holds are counted from memory instead (readCovered).
 */
export async function writeAcksSqlite(tx: Queryable, acks: DeviceAck[], opts: { devices: boolean; recent?: RecentPointers; ring?: number } = { devices: true }): Promise<AckOutcome> {
  const sorted = [...acks].sort(byUserThenDevice);
  const userIds = [...new Set(sorted.map((a) => a.userId))];
  const marks = new Map<string, Mark>();
  /** Every user row read (the acknowledging users, then the senders among the rest): conv_version as read. */
  const convVersion = new Map<string, number>();
  await readUsersSqlite(tx, userIds, marks, convVersion);
  const ranges = moveMarks(sorted, marks);
  // Per range, the newest seq per (conversation, other sender) among the messages it is the
  // first to cover; per group message (not a notice), how many recipients newly store it.
  // A loop, not ranges.map(): V8's inlined map() makes a holey array where the builtin made a
  // packed one, and the optimized flush deoptimized at its first run (issue 23).
  const newest: Map<string, Map<string, number>>[] = [];
  for (let i = 0; i < ranges.length; i++) newest.push(new Map());
  const hits: { conv: string; seq: number; n: number }[] = [];
  /** (sender, conv) → delivered_seq as it moves; null: the sender has no entry. */
  const entrySeq = new Map<string, number | null>();
  const covered = ranges.length === 0 ? [] : await readCovered(tx, ranges, marks, opts.recent, opts.ring);
  // Consecutive rows are mostly of one conversation, sender and range (a 1:1 flush: every
  // message of a chat since the last flush): those skip the key and the map lookups.
  let lastConv: string | null = null;
  let lastSender: string | null = null;
  let lastFirst = -1;
  let lastBySender: Map<string, number> | null = null;
  /** lastBySender's seq for lastSender (only this loop writes it). */
  let lastMax = -1;
  for (const r of covered) {
    const conv = r[0];
    const seq = Number(r[1]);
    const n = Number(r[2]);
    const first = Number(r[3]) - 1;
    const sender = r[4];
    const kind = r[5];
    let bySender: Map<string, number>;
    if (lastBySender !== null && first === lastFirst && conv === lastConv && sender === lastSender) {
      bySender = lastBySender;
    } else {
      // The entry as read: the first row of this sender and conversation carries it.
      const key = `${sender}\u0000${conv}`;
      if (!entrySeq.has(key)) entrySeq.set(key, Number(r[7]) === 1 ? Number(r[6]) : null);
      const per = newest[first]!;
      let found = per.get(conv);
      if (!found) per.set(conv, (found = new Map()));
      bySender = found;
      lastConv = conv;
      lastSender = sender;
      lastFirst = first;
      lastBySender = bySender;
      lastMax = bySender.get(sender) ?? -1;
    }
    if (lastMax < seq) {
      bySender.set(sender, seq);
      lastMax = seq;
    }
    if (isGroupConv(conv) && kind !== 'system') hits.push({ conv, seq, n });
  }
  const out: AckOutcome = { delivered: [], counts: [] };
  /** sender → list-version bumps so far; (sender, conv) → [seq, bump number]. */
  const bumps = new Map<string, number>();
  const entryWrites = new Map<string, [string, string, number, number]>();
  for (let i = 0; i < ranges.length; i++) {
    const rows: { conv: string; sender: string; seq: number }[] = [];
    for (const [conv, bySender] of newest[i]!) for (const [sender, seq] of bySender) rows.push({ conv, sender, seq });
    rows.sort(byConvThenSender);
    for (const r of rows) {
      const key = `${r.sender}\u0000${r.conv}`;
      const cur = entrySeq.get(key) ?? null;
      if (cur === null || cur >= r.seq) continue;
      entrySeq.set(key, r.seq);
      const n = (bumps.get(r.sender) ?? 0) + 1;
      bumps.set(r.sender, n);
      entryWrites.set(key, [r.sender, r.conv, r.seq, n]);
      out.delivered.push({ conv: r.conv, seq: r.seq, sender: r.sender, by: ranges[i]!.user });
    }
  }

  // The writes, every value absolute (see LITE_ROWS): the senders whose entries move and whose
  // rows were not read yet are read now.
  const more = [...bumps.keys()].filter((id) => !convVersion.has(id));
  if (more.length > 0) await readUsersSqlite(tx, more, marks, convVersion);
  const writes: Promise<unknown>[] = [];
  if (opts.devices) {
    const top = new Map<string, DeviceAck>();
    for (const a of sorted) {
      const key = `${a.userId}\u0000${a.deviceId}`;
      const prev = top.get(key);
      if (!prev || prev.inboxSeq < a.inboxSeq) top.set(key, a);
    }
    insertRows(tx, LITE_ROWS.devices, [...top.values()].map((a) => [a.userId, a.deviceId, a.inboxSeq]), writes);
  }
  // A user who both moved their mark and sent entries that move (in 1:1 traffic: nearly every
  // user of a flush) gets one row of one statement.
  const userRows: unknown[][] = [];
  for (const [id, m] of marks) {
    const n = bumps.get(id) ?? 0;
    if (m.delivered > m.start || n > 0) userRows.push([id, m.delivered, convVersion.get(id)! + n]);
  }
  insertRows(tx, LITE_ROWS.users, userRows, writes);
  const entryRows: unknown[][] = [];
  for (const [sender, conv, seq, n] of entryWrites.values()) {
    const v = convVersion.get(sender);
    // A sender without a user row moves no entry (as a bump that found no row did).
    if (v !== undefined) entryRows.push([sender, conv, seq, v + n]);
  }
  insertRows(tx, LITE_ROWS.entries, entryRows, writes);
  await Promise.all(writes);
  hits.sort(byConvThenSeq);
  for (const h of hits) {
    const row = await tx.get<{ sender: string; count: number | string }>(LITE.raise, [h.n, h.conv, h.seq]);
    if (row) out.counts.push({ conv: h.conv, seq: h.seq, sender: row.sender, count: Number(row.count) });
  }
  return out;
}
