import type { Logger } from 'pino';
import type { ServicesConfig } from '../config/services-config.ts';
import type { NotificationService } from './notification-service.ts';
import type { NotificationStore } from './notification-store.ts';
import type { ScheduleStore } from './schedule-store.ts';

/**
 * Background work of the notifications module on every node: sends due schedules (each leased
 * to one node, sent exactly once: see ScheduleStore) and runs the retention sweep (idempotent
 * deletes, harmless when several nodes run it).
 */
export class NotificationScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private lastSweep = 0;

  constructor(
    private readonly d: {
      node: string;
      cfg: ServicesConfig;
      service: NotificationService;
      store: NotificationStore;
      schedules: ScheduleStore;
      log: Logger;
      now?: () => number;
    },
  ) {}

  private get now(): number {
    return (this.d.now ?? Date.now)();
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = null;
        this.schedule(this.d.cfg.schedulePollMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { cfg, log } = this.d;
    try {
      const due = await this.d.schedules.claim(this.d.node, this.now, cfg.scheduleLeaseMs, 10);
      for (const s of due) {
        if (this.stopped) break;
        try {
          const b = await this.d.service.sendScheduled(s, this.d.node);
          log.info({ schedule: s.id, broadcast: b?.id ?? null, recipients: b?.recipients ?? 0 }, b ? 'scheduled broadcast sent' : 'schedule no longer ours to send');
        } catch (err) {
          const giveUp = s.attempts >= cfg.scheduleMaxAttempts;
          log.warn({ schedule: s.id, err: (err as Error).message, giveUp }, 'scheduled broadcast failed');
          await this.d.schedules.failed(s.id, this.d.node, (err as Error).message, giveUp, this.now + Math.min(60_000, 1000 * 2 ** s.attempts), this.now);
        }
      }
      if (this.now - this.lastSweep >= cfg.sweepMs) {
        this.lastSweep = this.now;
        const before = this.now - cfg.retentionDays * 86_400_000;
        const swept = await this.d.store.sweep(before);
        const schedules = await this.d.schedules.sweep(before);
        if (swept.broadcasts + swept.slots + schedules > 0) log.info({ ...swept, schedules }, 'notification retention sweep');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'notification scheduler: poll failed');
    }
  }
}
