import { MagpieError } from '@magpie/protocol';
import type { RetentionConfig } from '../config/retention-config.ts';
import type { Store } from '../store/store.ts';
import type { PurgeJob } from './purge-job.ts';
import type { RetentionStore } from './retention-store.ts';

/** The operator's reads and retention settings behind the admin and console routes (src/retention/index.ts). */
export class MessageAdmin {
  constructor(
    private readonly core: Store,
    private readonly retention: RetentionStore,
    private readonly job: PurgeJob,
    private readonly settings: RetentionConfig,
    private readonly now: () => number = Date.now,
  ) {}

  async lookup(id: string) {
    const message = await this.core.messageById(id);
    if (!message) throw new MagpieError('not_found', `no message with id ${id} (it may have been purged)`);
    const record = await this.core.getConversation(message.conv);
    return { message, conversation: { id: message.conv, kind: record?.kind ?? 'direct', lastSeq: record?.lastSeq ?? message.seq, purgedSeq: await this.core.purgedSeq(message.conv) } };
  }

  async list(conv: string, q: { before?: number; after?: number; limit: number }) {
    const record = await this.core.getConversation(conv);
    if (!record) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    const purgedSeq = await this.core.purgedSeq(conv);
    const messages = await this.core.readHistory(conv, q.after !== undefined ? { after: q.after, limit: q.limit } : { before: q.before ?? Number.MAX_SAFE_INTEGER, limit: q.limit });
    const more = q.after !== undefined ? (messages.at(-1)?.seq ?? record.lastSeq) < record.lastSeq : messages.length === q.limit && (messages.at(-1)?.seq ?? 0) > purgedSeq + 1;
    return { messages, lastSeq: record.lastSeq, purgedSeq, more };
  }

  async status() {
    const overrides = await this.retention.overrides('', 1000);
    return { settings: { ...this.settings }, lease: await this.retention.leaseHolder(this.now()), runs: await this.retention.runs(20), overrides };
  }

  async convRetention(conv: string) {
    const record = await this.core.getConversation(conv);
    if (!record) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    const [override, state] = await Promise.all([this.retention.override(conv), this.retention.purgeState(conv)]);
    return {
      conv,
      kind: record.kind,
      days: this.job.daysFor(record.kind, override?.days ?? null),
      override,
      purgedSeq: state?.purgedSeq ?? 0,
      purgedCount: state?.purgedCount ?? 0,
      purgedAt: state?.purgedAt ?? null,
    };
  }

  async setOverride(conv: string, days: number, reason: string, by: string) {
    if (!(await this.core.getConversation(conv))) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    await this.retention.setOverride({ conv, days, reason, setBy: by, setAt: this.now() });
    return this.convRetention(conv);
  }

  async clearOverride(conv: string) {
    if (!(await this.retention.clearOverride(conv))) throw new MagpieError('not_found', `${conv} has no retention override`);
    return this.convRetention(conv);
  }
}
