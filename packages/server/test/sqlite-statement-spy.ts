/**
 * Tests of the SQLite store's statements: every transaction of `engine` from now on records each
 * statement text it runs into the returned array (to see which path a write took).
 */
import type { SqliteEngine } from '../src/db/sqlite-engine.ts';
import type { Queryable } from '../src/db/engine.ts';

export function recordStatements(engine: SqliteEngine): string[] {
  const statements: string[] = [];
  const transaction = engine.transaction.bind(engine);
  engine.transaction = ((fn: (tx: Queryable) => Promise<unknown>, opts?: object) =>
    transaction((tx) => {
      // Every method spelled out: SQLite's Queryable is a class (methods on its prototype, which a spread would not copy).
      const spy: Queryable = {
        dialect: tx.dialect,
        textList: (values) => tx.textList(values),
        all: (sql, params) => (statements.push(sql), tx.all(sql, params)),
        values: (sql, params) => (statements.push(sql), tx.values(sql, params)),
        get: (sql, params) => (statements.push(sql), tx.get(sql, params)),
        run: (sql, params) => (statements.push(sql), tx.run(sql, params)),
        exec: (sql) => (statements.push(sql), tx.exec(sql)),
      };
      return fn(spy);
    }, opts)) as typeof engine.transaction;
  return statements;
}
