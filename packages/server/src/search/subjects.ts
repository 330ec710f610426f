import { MagpieError, type Subject } from '@magpie/protocol';
import type { SqlEngine } from '../db/index.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';

/**
 * Subject conversations (the Xianyu model): two users hold one 1:1 conversation per business
 * subject (an item, an order), next to their plain direct chat.
 *
 * Id: `d:<a>:<b>:<type>.<id>` (a < b). It starts like a direct conversation id, so every
 * existing check that reads the two parties from `d:<a>:<b>` (membership, media access,
 * the SDK's peer) applies unchanged, and the store keeps it a `direct` conversation with a
 * member row per party. The plain chat `d:<a>:<b>` has no fourth part, so the ids never
 * collide; the type has no `.`, so `<type>.<id>` splits at the first dot.
 */
export function subjectConversationId(a: string, b: string, type: string, id: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  return `d:${x}:${y}:${type}.${id}`;
}

/** The subject part of a subject conversation id, or null for any other conversation. */
export function subjectOfConversation(conv: string): { type: string; id: string } | null {
  const parts = conv.split(':');
  if (parts[0] !== 'd' || parts.length !== 4) return null;
  const key = parts[3]!;
  const dot = key.indexOf('.');
  return dot > 0 ? { type: key.slice(0, dot), id: key.slice(dot + 1) } : null;
}

interface SubjectRow {
  conv_id: string;
  user_a: string;
  user_b: string;
  subject_type: string;
  subject_id: string;
  title: string;
  attrs: string;
  created_at: number | string;
  updated_at: number | string;
}

function subjectFromRow(r: SubjectRow): Subject {
  return {
    conv: r.conv_id,
    type: r.subject_type,
    id: r.subject_id,
    title: r.title,
    attrs: JSON.parse(r.attrs) as Record<string, string>,
    users: [r.user_a, r.user_b],
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

const MAX_CONV_ID = 128;

/**
 * Attaching and reading subjects. The operator's backend (admin token) attaches: the
 * conversation is created by the first `system` notice `{event: 'subject'}` (which also shows
 * the subject in the chat), then the subject row is written; attaching again with other
 * title/attributes updates the row and posts another notice. The operator is trusted: the
 * direct-message policies (blocks, strangers) do not apply to the notice.
 */
export class SubjectService {
  constructor(
    private readonly db: SqlEngine,
    private readonly store: Store,
    private readonly messaging: MessagingService,
    private readonly now: () => number = Date.now,
  ) {}

  async attach(input: { users: [string, string]; type: string; id: string; title: string; attrs?: Record<string, string> }): Promise<{ subject: Subject; created: boolean }> {
    const [u1, u2] = input.users;
    if (u1 === u2) throw new MagpieError('invalid', 'a subject conversation needs two different users');
    const [a, b] = u1 < u2 ? [u1, u2] : [u2, u1];
    const conv = subjectConversationId(a, b, input.type, input.id);
    if (conv.length > MAX_CONV_ID) throw new MagpieError('invalid', `subject id too long for a conversation id (${conv.length} > ${MAX_CONV_ID})`);
    const existing = await this.store.existingUsers([a, b]);
    for (const u of [a, b]) if (!existing.has(u)) throw new MagpieError('not_found', `no such user: ${u}`);
    const attrs = JSON.stringify(input.attrs ?? {});
    const old = await this.db.get<SubjectRow>('SELECT * FROM conv_subjects WHERE conv_id = ?', [conv]);
    if (old && old.title === input.title && old.attrs === attrs) return { subject: subjectFromRow(old), created: false };
    const time = this.now();
    // The notice first: it creates the conversation (with both member rows) if needed. A retry
    // after a failure between the two writes posts the notice again and then writes the row.
    await this.messaging.commitAndPublish({
      sender: a,
      clientMsgId: `subject-${timeId('s')}`,
      conv,
      directMembers: [a, b],
      kind: 'system',
      body: { event: 'subject', data: { type: input.type, id: input.id, title: input.title, attrs: input.attrs ?? {} } },
      time,
      id: timeId('m'),
    });
    await this.db.run(
      `INSERT INTO conv_subjects (conv_id, user_a, user_b, subject_type, subject_id, title, attrs, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conv_id) DO UPDATE SET title = excluded.title, attrs = excluded.attrs, updated_at = excluded.updated_at`,
      [conv, a, b, input.type, input.id, input.title, attrs, time, time],
    );
    const row = await this.db.get<SubjectRow>('SELECT * FROM conv_subjects WHERE conv_id = ?', [conv]);
    return { subject: subjectFromRow(row!), created: !old };
  }

  /** The subject of `conv` for one of its two parties; null for a conversation without one. */
  async get(userId: string, conv: string): Promise<Subject | null> {
    const [kind, a, b] = conv.split(':');
    if (kind === 'd' && a !== userId && b !== userId) throw new MagpieError('forbidden', `no access to conversation ${conv}`);
    if (kind !== 'd') {
      if (!(await this.store.isMember(conv, userId)) && (await this.store.formerMemberLimit(conv, userId)) === null) throw new MagpieError('forbidden', `no access to conversation ${conv}`);
      return null;
    }
    const row = await this.db.get<SubjectRow>('SELECT * FROM conv_subjects WHERE conv_id = ?', [conv]);
    return row ? subjectFromRow(row) : null;
  }
}
