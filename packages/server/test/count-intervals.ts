/** Counts the process's setInterval calls until `restore()` (tests of timers that should sleep while idle). */
export function countIntervals(): { n: number; restore(): void } {
  const orig = globalThis.setInterval;
  const c = {
    n: 0,
    restore: () => {
      globalThis.setInterval = orig;
    },
  };
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    c.n++;
    return orig(...args);
  }) as typeof setInterval;
  return c;
}
