import type { Migration } from '../migrate.ts';

/**
 * PostgreSQL only: what the append's fast path needs (store/sql-store.ts, "Seq decided inside
 * PostgreSQL" in docs/architecture.md). A plain post reads its conversation without locking it
 * and decides in memory; its write pipeline then bumps `conversations.last_seq` itself, and
 * that bump checks that nothing its decisions depended on changed since the read:
 *
 * - `conversations.effect_seq`: the seq of the conversation's last group effect (create, add,
 *   remove, leave, role, mute, transfer, update, dismiss), written with it. `member_epoch` moves
 *   only with joins and leaves; role, mute, settings and dismissal move this.
 * - `magpie_stale_append(conv)`: raises SQLSTATE MG001 — the bump's way of failing the whole
 *   pipeline when the conversation changed (the batch then reruns on the locking path).
 *
 * SQLite has one writer and no fast path: nothing there.
 */
export const m0020: Migration = {
  name: '0020-append-fast-path',
  async up(db) {
    if (db.dialect !== 'postgres') return;
    await db.exec(`
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS effect_seq BIGINT NOT NULL DEFAULT 0;
CREATE OR REPLACE FUNCTION magpie_stale_append(conv TEXT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stale append: conversation % changed since it was read', conv USING ERRCODE = 'MG001';
END $$;
`);
  },
};
