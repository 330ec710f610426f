/**
 * Statements this process sent to PostgreSQL, by text (BEGIN, ROLLBACK and the engine's own
 * COMMIT included; PIPELINE_FLUSH, which runs nothing, not): db/postgres-engine.ts counts
 * them. A constant text's hash is cached on the string, so counting is one Map update per
 * statement. Read by /metrics (`magpie_db_statements_total`, per statement with
 * MAGPIE_DB_STATEMENT_STATS=1) and through it by bench/cluster.ts (statements per message per node).
 */
const statementCounts = new Map<string, number>();

export function counted(text: string): void {
  statementCounts.set(text, (statementCounts.get(text) ?? 0) + 1);
}

/** Statements sent so far by this process, by text. */
export function pgStatementCounts(): ReadonlyMap<string, number> {
  return statementCounts;
}

/** A short label for a statement text: its first words, whitespace collapsed (up to 60 characters). */
export function statementLabel(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 60);
}
