import type { Bus, BusEvent, DeliverEvent } from './bus.ts';

/** The in-process Bus: one node, events handed straight to the local gateway. */
export class MemoryBus implements Bus {
  private readonly handlers: ((event: BusEvent) => void)[] = [];

  publish(event: BusEvent): void {
    for (const h of this.handlers) h(event);
  }

  publishDeliveries(events: DeliverEvent[]): void {
    for (const e of events) this.publish(e);
  }

  subscribe(handler: (event: BusEvent) => void): void {
    this.handlers.push(handler);
  }

  // One node holds every connection: there is no interest to route by.
  async watchUser(_userId: string): Promise<void> {}
  unwatchUser(_userId: string): void {}
  async watchConv(_conv: string): Promise<void> {}
  unwatchConv(_conv: string): void {}
  // The only node never loses its own events, and holds every connection itself.
  onResume(_listener: () => void): void {}
  async remotePresence(_userIds: string[]): Promise<Map<string, string[]>> {
    return new Map();
  }
  servePresence(_local: (userIds: string[]) => Map<string, string[]>): void {}
  // There is no other node to ask.
  async askNodes(_topic: string, _question: unknown): Promise<unknown[]> {
    return [];
  }
  answerNodes(_topic: string, _answer: (question: unknown) => unknown): void {}

  async check(): Promise<void> {}

  async close(): Promise<void> {
    this.handlers.length = 0;
  }
}
