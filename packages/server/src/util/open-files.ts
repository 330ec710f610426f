import { readFileSync } from 'node:fs';

/**
 * The process's open-file limits (RLIMIT_NOFILE), read from /proc/self/limits; null where
 * that file does not exist (not Linux). Node raises the soft limit to the hard limit itself
 * at start-up, so `soft` is normally already `hard`; only the hard limit needs the operator
 * (ulimit -Hn, systemd LimitNOFILE=, docker --ulimit nofile=…): see docs/operations.md.
 */
export function openFileLimits(path = '/proc/self/limits'): { soft: number; hard: number } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return null;
  const num = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

/** File descriptors kept free of sockets for the database, logs, push and the like. */
export const RESERVED_FDS = 512;

/** The connection cap to apply: `configured`, or (0) the open-file limit minus the reserve; 0 = none. */
export function connectionCap(configured: number, limits: { soft: number } | null): number {
  if (configured > 0) return configured;
  if (!limits || !Number.isFinite(limits.soft)) return 0;
  return Math.max(64, limits.soft - RESERVED_FDS);
}
