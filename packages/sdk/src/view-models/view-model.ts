/**
 * The base of the SDK's view models: plain, framework-neutral state holders. A view binds
 * with `subscribe(listener)` and `getSnapshot()` (React: `useSyncExternalStore(vm.subscribe,
 * vm.getSnapshot)`; anything else: call getSnapshot in the listener). Snapshots are
 * immutable: every change makes a new object, so identity comparison tells what changed.
 */
export class ViewModel<S extends object> {
  #state: S;
  #listeners = new Set<() => void>();
  #disposers: (() => void)[] = [];
  #disposed = false;

  constructor(initial: S) {
    this.#state = initial;
  }

  /** Subscribe to changes; returns the function that unsubscribes. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** The current snapshot (the same object until something changes). */
  readonly getSnapshot = (): S => this.#state;

  get disposed(): boolean {
    return this.#disposed;
  }

  protected setState(patch: Partial<S>): void {
    if (this.#disposed) return;
    let changed = false;
    for (const k of Object.keys(patch) as (keyof S)[]) {
      if (this.#state[k] !== patch[k]) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    this.#state = { ...this.#state, ...patch };
    for (const l of [...this.#listeners]) {
      try {
        l();
      } catch (err) {
        console.error('[magpie-sdk] a view-model listener threw', err);
      }
    }
  }

  /** Run `fn` on dispose (unsubscribe from the client, stop timers). */
  protected own(fn: () => void): void {
    if (this.#disposed) fn();
    else this.#disposers.push(fn);
  }

  /** Detach from everything; the snapshot stays readable. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const fn of this.#disposers.splice(0)) {
      try {
        fn();
      } catch {
        /* ignore */
      }
    }
    this.#listeners.clear();
  }
}

/** A human-readable message from any error (MagpieClientError carries the server's). */
export function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'message' in err && typeof (err as { message: unknown }).message === 'string') return (err as { message: string }).message;
  return String(err);
}
