/** Runs async tasks one at a time, in the order they were added. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private size = 0;

  run<T>(task: () => Promise<T>): Promise<T> {
    this.size++;
    const p = this.tail.then(task).finally(() => {
      this.size--;
    });
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Tasks queued or running. */
  get length(): number {
    return this.size;
  }

  /** Resolves when everything queued so far has run. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
