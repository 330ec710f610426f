import type { Migration } from '../migrate.ts';

/**
 * The full user list of a big group change (create, invite, join, approve, kick). The notice in
 * the conversation carries a count and the first few ids; clients fetch the rest on demand
 * (GET /api/groups/:conv/changes/:seq/users). Keyed by the notice's message id, written before
 * the notice commits, so a notice never lacks its list.
 */
export const m0019: Migration = {
  name: '0019-group-change-users',
  async up(db) {
    await db.exec(`
CREATE TABLE group_change_users (
  conv_id TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (conv_id, msg_id, user_id)
);
`);
  },
};
