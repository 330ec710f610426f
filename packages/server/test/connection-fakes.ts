import type { WebSocket } from 'ws';
import type { ConnectionTask } from '../src/gateway/connection.ts';

/** The part of ws a Connection uses when nothing is written: pause/resume, counted. */
export function fakeWs(): WebSocket & { paused: boolean; pauses: number } {
  const ws = {
    paused: false,
    pauses: 0,
    bufferedAmount: 0,
    readyState: 1,
    pause() {
      ws.paused = true;
      ws.pauses++;
    },
    resume() {
      ws.paused = false;
    },
  };
  return ws as unknown as WebSocket & { paused: boolean; pauses: number };
}

/** A request (a send when `budgeted`, else say a sync) that runs until the test finishes it; `log` records the start order. */
export class HeldTask implements ConnectionTask {
  started = false;
  private done: (() => void) | undefined;
  constructor(
    readonly name: string,
    readonly budgeted: boolean,
    private readonly log: string[],
  ) {}
  run(done: () => void): void {
    this.started = true;
    this.done = done;
    this.log.push(this.name);
  }
  finish(): void {
    const d = this.done;
    this.done = undefined;
    d?.();
  }
}
