import type { Logger } from 'pino';
import type { WebhookConfig, WebhooksConfig } from '../config/webhooks-config.ts';
import type { OutboxEvent, OutboxStore } from './outbox-store.ts';
import { postSigned } from './signature.ts';

export interface DispatchStats {
  attempt(labels: { hook: string; outcome: 'delivered' | 'retry' | 'failed' }): void;
}

/**
 * Delivers the outbox: every `pollMs` (and at once after new events) it leases the due heads
 * of each hook and key and POSTs them, signed. A 2xx answer is delivery; anything else (or
 * no answer in time) is retried with jittered exponential backoff, and after `maxAttempts` the
 * event is set aside as failed so the rest of its conversation moves on. Delivery is at least
 * once: a receiver deduplicates by the payload's `id`.
 */
export class OutboxDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private stopped = true;
  private readonly hooks: Map<string, WebhookConfig>;
  private lastPrune = 0;

  constructor(
    private readonly store: OutboxStore,
    hooks: readonly WebhookConfig[],
    private readonly cfg: WebhooksConfig['outbox'],
    private readonly log: Logger,
    private readonly stats: DispatchStats,
    private readonly now: () => number = Date.now,
  ) {
    this.hooks = new Map(hooks.map((h) => [h.name, h]));
  }

  start(): void {
    if (this.hooks.size === 0) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.running) await new Promise((r) => setTimeout(r, 10));
  }

  /** New events were written: look now instead of at the next poll. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.running || this.stopped) return;
    this.running = true;
    let busy = false;
    try {
      const leaseMs = this.cfg.timeoutMs * 2 + 1000;
      const due = await this.store.claimDue(this.now(), this.cfg.concurrency, leaseMs);
      busy = due.length > 0;
      await Promise.all(due.map((e) => this.deliver(e)));
      if (this.now() - this.lastPrune > 60_000) {
        this.lastPrune = this.now();
        await this.store.prune(this.now() - this.cfg.keepDeliveredMs);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'webhook outbox: poll failed');
    } finally {
      this.running = false;
      const soon = busy || this.again;
      this.again = false;
      this.schedule(soon ? 0 : this.cfg.pollMs);
    }
  }

  private async deliver(e: OutboxEvent): Promise<void> {
    const hook = this.hooks.get(e.hook);
    if (!hook) {
      // A hook removed from the configuration: its events wait (kept) until it returns; look again later.
      await this.store.failed(e.id, 'hook not configured on this node', this.now() + this.cfg.retryMaxMs, false, this.now());
      return;
    }
    let error: string;
    try {
      const res = await postSigned(hook.url, hook.secret, e.event, e.payload, this.cfg.timeoutMs, this.now());
      if (res.status >= 200 && res.status < 300) {
        await this.store.delivered(e.id, this.now());
        this.stats.attempt({ hook: e.hook, outcome: 'delivered' });
        return;
      }
      error = `answer ${res.status}`;
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? `no answer in ${this.cfg.timeoutMs} ms` : (err as Error).message;
    }
    const attempts = e.attempts + 1;
    const giveUp = attempts >= this.cfg.maxAttempts;
    const delay = Math.min(this.cfg.retryMaxMs, this.cfg.retryBaseMs * 2 ** Math.min(30, attempts - 1)) * (0.8 + Math.random() * 0.4);
    await this.store.failed(e.id, error, this.now() + Math.round(delay), giveUp, this.now());
    this.stats.attempt({ hook: e.hook, outcome: giveUp ? 'failed' : 'retry' });
    if (giveUp) this.log.warn({ hook: e.hook, event: e.event, id: e.id, error }, 'webhook event set aside after its last attempt');
  }
}
