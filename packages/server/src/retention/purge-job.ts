import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RetentionConfig } from '../config/retention-config.ts';
import type { RetentionStore } from './retention-store.ts';

const DAY_MS = 24 * 3600 * 1000;
const PAGE = 500;

/** What one purge run did. `busy`: another node holds the lease; `lost`: the lease lapsed mid-run (this node stopped). */
export interface PurgeReport {
  outcome: 'done' | 'busy' | 'lost' | 'failed';
  node: string;
  startedAt: number;
  finishedAt: number;
  conversations: number;
  messages: number;
  /** Delete transactions (batches) that removed messages. */
  batches: number;
}

export function retentionMetrics(registry: Registry) {
  return {
    purged: new Counter({ name: 'magpie_retention_purged_messages_total', help: 'Messages deleted by the retention purge (this node)', labelNames: ['kind'] as const, registers: [registry] }),
    runs: new Counter({ name: 'magpie_retention_runs_total', help: 'Retention purge runs by outcome (done, busy = another node held the lease, lost, failed)', labelNames: ['outcome'] as const, registers: [registry] }),
    lastRun: new Gauge({ name: 'magpie_retention_last_run_timestamp_seconds', help: 'When the last purge run that held the lease on this node finished (Unix seconds)', registers: [registry] }),
    lastRunMessages: new Gauge({ name: 'magpie_retention_last_run_messages', help: 'Messages the last purge run on this node deleted', registers: [registry] }),
  };
}
export type RetentionMetrics = ReturnType<typeof retentionMetrics>;

/**
 * The retention purge: every `intervalMs` each node tries to take the lease; the holder walks
 * the conversations whose kind (or override) has a retention, and deletes what is older in
 * batches of `batchSize`, pausing `pauseMs` between batches so live traffic keeps the
 * database. Each batch renews the lease in its own transaction, so only one node ever purges.
 */
export class PurgeJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PurgeReport> | null = null;
  private stopped = false;
  /**
   * SQLite: the search file's index (search/sqlite-search-db.ts). After a run that purged
   * messages it is woken to apply the purge log; the log rows it has applied are deleted.
   */
  searchIndex: { kick(): void; appliedPurges(): Promise<number | null> } | undefined;

  constructor(
    private readonly store: RetentionStore,
    private readonly config: RetentionConfig,
    private readonly node: string,
    private readonly metrics: RetentionMetrics,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Days of retention for a conversation kind (0 = forever; unknown kinds are kept unless overridden). */
  daysFor(kind: string, override: number | null): number {
    if (override !== null) return override;
    if (kind === 'direct') return this.config.directDays;
    if (kind === 'group') return this.config.groupDays;
    if (kind === 'super') return this.config.superGroupDays;
    return 0;
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.run()
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.config.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.config.intervalMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Run a purge now (or join the one running on this node). */
  run(): Promise<PurgeReport> {
    this.running ??= this.runOnce().finally(() => (this.running = null));
    return this.running;
  }

  /** Members per transaction for the per-user rows (each member's inbox is scanned by its key). */
  private get memberChunk(): number {
    return Math.max(1, Math.floor(this.config.batchSize / 10));
  }

  private pause = (): Promise<void> => (this.config.pauseMs > 0 && !this.stopped ? new Promise((r) => setTimeout(r, this.config.pauseMs)) : Promise.resolve());

  private async runOnce(): Promise<PurgeReport> {
    const report: PurgeReport = { outcome: 'done', node: this.node, startedAt: this.now(), finishedAt: 0, conversations: 0, messages: 0, batches: 0 };
    const { leaseMs, batchSize } = this.config;
    if (!(await this.store.acquire(this.node, this.now(), leaseMs))) {
      report.finishedAt = this.now();
      report.outcome = 'busy';
      this.metrics.runs.inc({ outcome: 'busy' });
      return report;
    }
    try {
      const allKinds = this.config.directDays > 0 || this.config.groupDays > 0 || this.config.superGroupDays > 0;
      scan: for (let after = ''; !this.stopped; ) {
        const page = await this.store.candidates(after, PAGE, allKinds);
        for (const c of page) {
          const days = this.daysFor(c.kind, c.overrideDays);
          if (days <= 0) continue;
          const cutoff = this.now() - days * DAY_MS;
          const oldest = await this.store.oldestAfter(c.conv, c.purgedSeq);
          if (oldest === null || oldest >= cutoff) continue;
          // Super groups hold no inbox pointers; other kinds lose theirs first (see purgeInbox).
          const end = c.kind === 'super' ? Number.MAX_SAFE_INTEGER : await this.store.prefixEnd(c.conv, c.purgedSeq, cutoff);
          if (c.kind !== 'super') await this.store.purgeInbox(c.conv, end, this.memberChunk, this.pause);
          let upto = c.purgedSeq;
          for (;;) {
            const r = await this.store.purgeBatch(c.conv, end, cutoff, batchSize, { holder: this.node, now: this.now(), ttlMs: leaseMs });
            if (r.lost) {
              report.outcome = 'lost';
              break scan;
            }
            report.messages += r.purged;
            upto = r.purgedSeq;
            if (r.purged > 0) {
              report.batches++;
              this.metrics.purged.inc({ kind: c.kind }, r.purged);
            }
            if (r.done || this.stopped) break;
            await this.pause();
          }
          await this.store.purgeMemberRows(c.conv, upto, this.memberChunk, this.pause);
          report.conversations++;
          await this.pause();
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.conv;
        if (!(await this.store.acquire(this.node, this.now(), leaseMs))) {
          report.outcome = 'lost';
          break;
        }
      }
    } catch (err) {
      report.outcome = 'failed';
      this.log?.error({ err }, 'retention purge failed');
    } finally {
      await this.store.release(this.node).catch(() => undefined);
    }
    report.finishedAt = this.now();
    this.metrics.runs.inc({ outcome: report.outcome });
    this.metrics.lastRun.set(report.finishedAt / 1000);
    this.metrics.lastRunMessages.set(report.messages);
    await this.store.recordRun({ node: report.node, startedAt: report.startedAt, finishedAt: report.finishedAt, conversations: report.conversations, messages: report.messages, outcome: report.outcome }).catch((err: unknown) => this.log?.warn({ err }, 'could not record the purge run'));
    const index = this.searchIndex;
    if (index) {
      if (report.messages > 0) index.kick();
      // The log rows of earlier runs (this run's are applied within the index's delay).
      try {
        const applied = await index.appliedPurges();
        if (applied !== null) await this.store.pruneSearchPurges(applied);
      } catch (err) {
        this.log?.warn({ err }, 'could not prune the search index purge log (tried again after the next run)');
      }
    }
    if (report.messages > 0 || report.outcome !== 'done') this.log?.info(report, 'retention purge run');
    return report;
  }
}
