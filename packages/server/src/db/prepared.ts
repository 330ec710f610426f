import type { Queryable } from './engine.ts';

/**
 * PostgreSQL (postgres.js): a statement text not yet prepared on a connection is described
 * first — one round trip to the server, and the connection's pipeline stops behind it. Inside a
 * transaction that holds row locks this stretches the hold by a round trip (and the node's
 * event-loop delay) per cold statement, on each of the pool's connections.
 *
 * `warm` runs statements whose parameters make them no-ops (empty arrays, a key that matches
 * nothing) at the start of a transaction, in the same pipeline as its first statements and
 * before any lock, so that the locked part later finds them prepared. Which connection a
 * transaction gets is not known in advance, so a text is warmed for its first WARM_USES
 * transactions in this process: the pool hands connections out in turn, so by then every
 * connection has prepared it. (A connection opened later, after an idle close, prepares a
 * cold text once inside a lock — at a time of low load.) SQLite: nothing to do.
 */
const WARM_USES = 200;
const uses = new Map<string, number>();

export type NoopStatement = readonly [sql: string, params: readonly unknown[]];

export function warm(tx: Queryable, statements: readonly NoopStatement[]): void {
  if (tx.dialect !== 'postgres') return;
  for (const [sql, params] of statements) {
    const n = uses.get(sql) ?? 0;
    if (n >= WARM_USES) continue;
    uses.set(sql, n + 1);
    // Errors surface through the transaction's own statements (it is aborted); nothing to await.
    tx.run(sql, params).catch(() => {});
  }
}
