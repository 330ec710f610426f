/**
 * The order of one connection's frames. Frames start in arrival order, and a frame starts
 * only when every earlier frame has finished — except that frames marked `pipelined` (sends
 * and ACKs) start right away while only other pipelined frames are running, so a burst of
 * sends on one connection still reaches group commit together. Anything else (`hello`,
 * reads, `read`, `ping`, …) is a barrier: it waits for everything before it, and everything
 * after it waits for it. A later frame can therefore never overtake an earlier one, and a
 * second `hello` is looked at only after the first has fully finished.
 *
 * While more than `maxQueued` frames wait, `flow.pause()` is called (the gateway stops reading
 * the socket, so TCP pushes back); `flow.resume()` once the queue is half drained. The flow is
 * the WebSocket itself (no closures per connection).
 */
/** A frame waiting for its turn: `start` runs it and must call `done` exactly once, when it has finished (never throws). */
export interface OrderedFrame {
  readonly pipelined: boolean;
  start(done: () => void): void;
}

export class FrameOrder {
  private readonly queue: OrderedFrame[] = [];
  private head = 0;
  private running = 0;
  private runningPipelined = true;
  private paused = false;
  /** In pump's loop: a frame that finishes synchronously (an ACK) lets the loop go on instead of pumping again inside it. */
  private pumping = false;
  /** One completion callback for all frames (no closure per frame). */
  private readonly done = (): void => this.finished();

  constructor(
    private readonly maxQueued: number,
    private readonly flow: { pause(): void; resume(): void },
  ) {}

  /** Run `frame` in order (the gateway answers errors itself). */
  submit(frame: OrderedFrame): void {
    this.queue.push(frame);
    this.pump();
    if (!this.paused && this.waiting > this.maxQueued) {
      this.paused = true;
      this.flow.pause();
    }
  }

  /** Frames received but not started. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.head < this.queue.length) {
        const next = this.queue[this.head]!;
        if (this.running > 0 && !(next.pipelined && this.runningPipelined)) break;
        this.queue[this.head++] = undefined as unknown as OrderedFrame;
        if (this.running === 0) this.runningPipelined = next.pipelined;
        this.running++;
        // Started synchronously: the first frame of an idle connection runs in its 'message' event.
        next.start(this.done);
      }
    } finally {
      this.pumping = false;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.paused && this.waiting <= this.maxQueued / 2) {
      this.paused = false;
      this.flow.resume();
    }
  }

  private finished(): void {
    this.running--;
    this.pump();
  }
}
