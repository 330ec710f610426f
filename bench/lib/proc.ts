import { readdirSync, readFileSync } from 'node:fs';

/** Resident set size of a process in bytes (VmRSS), or NaN when unreadable. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) of a process in milliseconds, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** System (kernel) part of a process's CPU time in milliseconds. */
export function sysCpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Kernel TCP buffer memory in bytes (the `mem` pages of /proc/net/sockstat). */
export function tcpKernelBytes(): number {
  try {
    const m = /TCP:.*mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4096 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy CPU time of the whole machine in milliseconds (all cores), from /proc/stat. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system, ms) of each thread of a process, keyed `tid name` (/proc/<pid>/task/*). */
export function threadCpuMsOf(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${tid === String(pid) ? 'main' : name}`, ((Number(fields[11]) + Number(fields[12])) * 1000) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * Per-thread CPU between two threadCpuMsOf snapshots, busiest first: "main 812 ms, node 95 ms, node 40 ms, …"
 * (`main` is the event loop; Node leaves its other threads — V8 GC and compiler workers, the libuv pool,
 * worker_threads — named `node` unless they name themselves).
 */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): string {
  const rows: [string, number][] = [];
  for (const [key, ms] of after) {
    const d = ms - (before.get(key) ?? 0);
    if (d > 0) rows.push([key.slice(key.indexOf(' ') + 1), d]);
  }
  return rows.sort((a, b) => b[1] - a[1]).map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(', ');
}
