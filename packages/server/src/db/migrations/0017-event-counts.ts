import type { Migration } from '../migrate.ts';
import { EVENT_KINDS_SQL } from '../../store/entry-sql.ts';

type Row = {
  user_id: string;
  conv_id: string;
  unread: number | string;
  mentions: number | string;
  deleted: number | string;
  unread_now: number | string;
  mentions_now: number | string;
  visible_after_clear: number | string;
  last_kind: string | null;
};

/**
 * Data repair, no schema change (issue 18). Before this release, lifecycle events (recall,
 * edit, reaction) were counted like messages in the stored conversation-list counters of
 * direct chats and normal groups, brought deleted entries back and were the entry's last
 * message. The list now skips them; this recounts `unread`/`mentions` of the entries that
 * events touched, deletes again the entries only events revived, and bumps the list
 * version of every repaired entry (and of entries whose last row is an event, whose
 * preview changes) so devices re-sync them. Super-group counters are computed on read and
 * need nothing. (A reaction also used to mark the conversation read for the reactor; the
 * read state before it is not recorded anywhere, so that is left as it is.)
 */
export const m0017: Migration = {
  name: '0017-event-counts',
  async up(db) {
    const lower = (a: string, b: string) => `CASE WHEN ${a} < ${b} THEN ${a} ELSE ${b} END`;
    const rows = await db.all<Row>(`
      SELECT e.user_id, e.conv_id, e.unread, e.mentions, e.deleted,
        (SELECT COUNT(*) FROM messages u WHERE u.conv_id = e.conv_id AND u.seq > e.read_seq AND u.seq <= e.last_seq
           AND u.sender_id <> e.user_id AND u.kind NOT IN ${EVENT_KINDS_SQL}) AS unread_now,
        (SELECT COUNT(*) FROM message_mentions mm WHERE mm.user_id = e.user_id AND mm.conv_id = e.conv_id AND mm.seq > e.read_seq AND mm.seq <= e.last_seq)
          + (SELECT COUNT(*) FROM messages a WHERE a.conv_id = e.conv_id AND a.mention_all = 1 AND a.seq > e.read_seq AND a.seq <= e.last_seq
               AND a.sender_id <> e.user_id AND a.kind NOT IN ${EVENT_KINDS_SQL}) AS mentions_now,
        (SELECT COUNT(*) FROM messages w WHERE w.conv_id = e.conv_id AND w.seq > e.cleared_seq AND w.seq <= e.last_seq
           AND w.kind NOT IN ${EVENT_KINDS_SQL}) AS visible_after_clear,
        (SELECT l.kind FROM messages l WHERE l.conv_id = e.conv_id AND l.seq = e.last_seq) AS last_kind
      FROM entries e JOIN conversations c ON c.id = e.conv_id
      WHERE c.kind <> 'super' AND EXISTS (
        SELECT 1 FROM messages v WHERE v.conv_id = e.conv_id AND v.kind IN ${EVENT_KINDS_SQL}
          AND v.seq > ${lower('e.read_seq', 'e.cleared_seq')} AND v.seq <= e.last_seq)
      ORDER BY e.user_id, e.conv_id`);
    for (const r of rows) {
      // Only events since the conversation was cleared (deleted for this user): deleted again, nothing unread.
      const redelete = Number(r.deleted) === 0 && Number(r.visible_after_clear) === 0;
      const unread = redelete ? 0 : Number(r.unread_now);
      const mentions = redelete ? 0 : Number(r.mentions_now);
      const lastIsEvent = r.last_kind !== null && EVENT_KINDS_SQL.includes(`'${r.last_kind}'`);
      if (!redelete && !lastIsEvent && unread === Number(r.unread) && mentions === Number(r.mentions)) continue;
      const v = await db.get<{ conv_version: number | string }>('UPDATE users SET conv_version = conv_version + 1 WHERE id = ? RETURNING conv_version', [r.user_id]);
      if (!v) continue;
      await db.run('UPDATE entries SET unread = ?, mentions = ?, deleted = ?, version = ? WHERE user_id = ? AND conv_id = ?', [
        unread,
        mentions,
        redelete ? 1 : Number(r.deleted),
        Number(v.conv_version),
        r.user_id,
        r.conv_id,
      ]);
    }
  },
};
