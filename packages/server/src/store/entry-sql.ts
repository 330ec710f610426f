import { LIFECYCLE_EVENT_KINDS } from '@magpie/protocol/core';

/**
 * `('recall', 'edit', 'reaction')`: the lifecycle event kinds as an SQL list. Events change
 * earlier messages; they never count as unread or as mentions and are never an entry's last
 * message (docs/protocol.md, "Events in the conversation list").
 */
export const EVENT_KINDS_SQL = `(${[...LIFECYCLE_EVENT_KINDS].map((k) => `'${k}'`).join(', ')})`;

/**
 * The seq of the entry's last message (events skipped) up to `x.eff_last` and above its
 * cleared seq: walks the (conv_id, seq) key backwards and stops at the first non-event.
 */
const LAST_VISIBLE = `(SELECT l.seq FROM messages l WHERE l.conv_id = x.conv_id AND l.seq <= x.eff_last AND l.seq > x.cleared_seq
      AND l.kind NOT IN ${EVENT_KINDS_SQL} ORDER BY l.seq DESC LIMIT 1)`;

/**
 * The conversation-list entry queries of the store (tables: migration 0004-core). `where`
 * filters `entries e` (joined with `conversations c`), `tail` orders/limits the inner
 * selection. For super groups the entry's lastSeq comes from the conversation (or, for a
 * former member, their left_seq), and unread/mentions are counted above read_seq; for the
 * others they are the stored counters. A deleted super-group entry shows again once the
 * conversation moved past the cleared seq with a message (not an event). The last message is
 * the newest non-event message (LAST_VISIBLE): a recall or edit of it shows through the
 * rewritten row; events never count as unread.
 */
export function entrySelect(where: string, tail = ''): string {
  return `
  SELECT x.user_id, x.conv_id, x.conv_kind, x.read_seq, x.delivered_seq, x.pinned, x.muted, x.draft, x.cleared_seq, x.version,
    x.eff_last AS last_seq,
    CASE WHEN x.conv_kind = 'super' THEN
      (SELECT COUNT(*) FROM messages u WHERE u.conv_id = x.conv_id AND u.seq > x.read_seq AND u.seq <= x.eff_last AND u.sender_id <> x.user_id AND u.kind NOT IN ${EVENT_KINDS_SQL})
    ELSE x.unread END AS unread,
    CASE WHEN x.conv_kind = 'super' THEN
      (SELECT COUNT(*) FROM message_mentions mm WHERE mm.user_id = x.user_id AND mm.conv_id = x.conv_id AND mm.seq > x.read_seq AND mm.seq <= x.eff_last)
      + (SELECT COUNT(*) FROM messages a WHERE a.conv_id = x.conv_id AND a.mention_all = 1 AND a.seq > x.read_seq AND a.seq <= x.eff_last AND a.sender_id <> x.user_id AND a.kind NOT IN ${EVENT_KINDS_SQL})
    ELSE x.mentions END AS mentions,
    CASE WHEN x.deleted = 1 AND m.seq IS NULL THEN 1 ELSE 0 END AS deleted,
    m.id AS m_id, m.seq AS m_seq, m.sender_id AS m_sender_id, m.kind AS m_kind, m.body AS m_body, m.time AS m_time, m.client_msg_id AS m_client_msg_id,
    (SELECT MIN(o.seq) FROM messages o WHERE o.conv_id = x.conv_id AND o.seq > x.read_seq AND o.seq <= x.eff_last AND o.sender_id <> x.user_id AND o.kind NOT IN ${EVENT_KINDS_SQL}) AS oldest_unread
  FROM (
    SELECT e.*, c.kind AS conv_kind,
      CASE WHEN c.kind = 'super' THEN COALESCE(mb.left_seq, c.last_seq) ELSE e.last_seq END AS eff_last
    FROM entries e
    JOIN conversations c ON c.id = e.conv_id
    LEFT JOIN members mb ON c.kind = 'super' AND mb.conv_id = e.conv_id AND mb.user_id = e.user_id
    WHERE ${where}
    ${tail}
  ) x
  LEFT JOIN messages m ON m.conv_id = x.conv_id AND m.seq = ${LAST_VISIBLE}
  ORDER BY x.version`;
}

/** read_seq, effective last seq and kind of one entry (for markRead / updateEntry). */
export const ENTRY_STATE_SQL = `
  SELECT e.read_seq, e.last_seq, e.unread, e.mentions, e.pinned, e.muted, e.draft, e.deleted, e.cleared_seq, c.kind AS conv_kind,
    CASE WHEN c.kind = 'super' THEN COALESCE(mb.left_seq, c.last_seq) ELSE e.last_seq END AS eff_last
  FROM entries e
  JOIN conversations c ON c.id = e.conv_id
  LEFT JOIN members mb ON c.kind = 'super' AND mb.conv_id = e.conv_id AND mb.user_id = e.user_id`;
