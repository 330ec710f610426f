import { randomUUID } from 'node:crypto';
import type { Message } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { WebhookConfig, WebhookEvent } from '../config/webhooks-config.ts';
import type { NewOutboxEvent, OutboxStore } from './outbox-store.ts';

/** The after-event a committed message raises: group notices and red-packet messages have their own. */
export function eventOfMessage(m: Message): WebhookEvent {
  if (m.kind === 'redpacket' || m.kind.startsWith('redpacket.')) return 'redpacket.event';
  if (m.kind === 'system') return 'group.event';
  return 'message.sent';
}

/**
 * Writes after-events into the outbox for every hook subscribed to them. Events of one tick are
 * written in one transaction; `ord` orders events of one key (a conversation's seq, or time).
 */
export class WebhookEvents {
  private buffer: NewOutboxEvent[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: OutboxStore,
    private readonly hooks: readonly WebhookConfig[],
    private readonly onWritten: () => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get active(): boolean {
    return this.hooks.some((h) => h.events.length > 0);
  }

  emit(event: WebhookEvent, key: string, ord: number, data: unknown): void {
    const targets = this.hooks.filter((h) => h.events.includes('*') || h.events.includes(event));
    if (targets.length === 0) return;
    const payload = JSON.stringify({ id: randomUUID(), event, time: this.now(), data });
    for (const h of targets) this.buffer.push({ hook: h.name, event, key, ord, payload });
    if (!this.flushing) this.flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
  }

  /** Write what is buffered (also called at shutdown). */
  async flush(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer;
      this.buffer = [];
      try {
        await this.store.enqueue(batch, this.now());
        this.onWritten();
      } catch (err) {
        this.log.error({ err: (err as Error).message, events: batch.length }, 'webhook outbox: could not write events');
      }
    }
    this.flushing = null;
  }

  onMessage = (m: Message): void => {
    this.emit(eventOfMessage(m), m.conv, m.seq, { message: m });
  };
}
