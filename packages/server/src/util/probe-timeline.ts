/**
 * TEMPORARY PROBE (issue 23, branch ovl23): timestamps of the hand-offs between the event loop
 * and the SQLite writer thread, to see where each waits for the other. Off unless
 * MAGPIE_PROBE_TIMELINE names a directory: each thread then records, from
 * MAGPIE_PROBE_AFTER_MS (default 8000) after its first mark and for MAGPIE_PROBE_WINDOW_MS
 * (default 500), every mark as (wall µs, name, n, the thread's cumulative event-loop idle ms)
 * and writes them to DIR/timeline-<threadId>.json.
 */
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';

const dir = process.env.MAGPIE_PROBE_TIMELINE;
const after = Number(process.env.MAGPIE_PROBE_AFTER_MS ?? 8000);
const windowMs = Number(process.env.MAGPIE_PROBE_WINDOW_MS ?? 500);
export const probeOn = dir !== undefined && dir !== '';

let first = -1;
let done = false;
const events: (string | number)[] = [];

export function mark(name: string, n = 0): void {
  if (!probeOn || done) return;
  const now = performance.now();
  // Both threads anchor on the first append batch (handed over / received).
  if (first < 0) {
    if (name !== 'hand:append' && name !== 'recv:append') return;
    first = now;
  }
  const rel = now - first;
  if (rel < after) return;
  if (rel > after + windowMs) {
    done = true;
    writeFileSync(`${dir}/timeline-${threadId}.json`, JSON.stringify(events));
    return;
  }
  events.push(Math.round((performance.timeOrigin + now) * 1000), name, n, Math.round(performance.eventLoopUtilization().idle * 1000) / 1000);
}
