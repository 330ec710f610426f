import type { Queryable } from './engine.ts';

/**
 * PostgreSQL (postgres.js): a statement text not yet prepared on a connection is described
 * first — one round trip to the server, and the connection's pipeline stops behind it. Inside a
 * transaction that holds row locks this stretches the hold by a round trip (and the node's
 * event-loop delay) per cold statement, on each of the pool's connections.
 *
 * `warm` runs statements whose parameters make them no-ops (empty arrays, a key that matches
 * nothing) at the start of a transaction, in the same pipeline as its first statements and
 * before any lock, so that the locked part later finds them prepared. PostgresEngine.transaction
 * knows its connection and what that connection has run since it connected
 * (`connectionStatements`): exactly the missing texts are warmed, so a warm connection runs
 * none (a new one, or one reconnected after an idle close, warms once). A transaction whose
 * connection is not known (a wrapped Queryable in tests) falls back to warming a text for its
 * first WARM_USES transactions in this process (the pool hands connections out in turn, so by
 * then every connection has prepared it). SQLite: nothing to do.
 */
const WARM_USES = 200;
const uses = new Map<string, number>();

export type NoopStatement = readonly [sql: string, params: readonly unknown[]];

/**
 * PostgreSQL transactions whose connection is known (PostgresEngine.transaction registers
 * them): the statement texts that connection has run (so prepared) since it connected. `warm`
 * then runs exactly the ones it lacks — nothing once the connection has them all, however many
 * transactions the process has run — instead of guessing by WARM_USES.
 */
export const connectionStatements = new WeakMap<Queryable, Set<string>>();

export function warm(tx: Queryable, statements: readonly NoopStatement[]): void {
  if (tx.dialect !== 'postgres') return;
  const have = connectionStatements.get(tx);
  if (have) {
    for (const [sql, params] of statements) {
      if (have.has(sql)) continue;
      // Added once it ran (PostgresEngine records every statement of the transaction).
      tx.run(sql, params).catch(() => {});
    }
    return;
  }
  for (const [sql, params] of statements) {
    const n = uses.get(sql) ?? 0;
    if (n >= WARM_USES) continue;
    uses.set(sql, n + 1);
    // Errors surface through the transaction's own statements (it is aborted); nothing to await.
    tx.run(sql, params).catch(() => {});
  }
}
