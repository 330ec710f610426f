/**
 * The SQLite writer thread's waiting jobs and the order it runs them in (store/sqlite-writer-worker.ts).
 *
 * Appends (sends waiting for their commit) go before waiting ACK flushes and delivered marks.
 * Those record what devices already hold — messages whose commit returned before the device
 * was sent them — so running them after a later append changes nothing they depend on, while
 * running one first holds every send of that append for one more transaction. Appends keep
 * their arrival order among themselves (a sender's messages stay in send order), and so do
 * the other jobs (a flush never overtakes an earlier flush; `close` comes after everything
 * handed over before it). A job that is not an append is passed over at most `maxPassed`
 * times in a row, so ACK state still moves under sustained sends.
 */
export class WriterQueue<J extends { job: string }> {
  private appends: J[] = [];
  private others: J[] = [];
  /** Appends run in a row while another job waited. */
  private passed = 0;

  constructor(private readonly maxPassed = 1) {}

  push(j: J): void {
    (j.job === 'append' ? this.appends : this.others).push(j);
  }

  /** Appends waiting to run. */
  get appendsWaiting(): number {
    return this.appends.length;
  }

  get size(): number {
    return this.appends.length + this.others.length;
  }

  /** The job to run next, or undefined when none waits. */
  shift(): J | undefined {
    if (this.others.length > 0 && (this.appends.length === 0 || this.passed >= this.maxPassed)) {
      this.passed = 0;
      return this.others.shift();
    }
    const a = this.appends.shift();
    if (a && this.others.length > 0) this.passed++;
    return a;
  }
}
