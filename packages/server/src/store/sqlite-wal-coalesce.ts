import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The WAL write-coalescing VFS shim (packages/server/native/walbuf.c, issue 23): a SQLite
 * loadable extension that becomes the process's default VFS and turns the ~2 writes per WAL
 * frame of a commit into one write per commit. Every SQLite file connection opened after it is
 * loaded, on any thread, goes through it; the C file's header says why no other connection
 * can see a frame that is still in its buffer.
 *
 * openSqlite calls prepareSqliteVfs() before it opens a file connection, on every thread (the
 * writer thread included), so the shim is registered before the first file connection. The
 * library is an optimisation: when it is missing or does not load, a warning is logged once and
 * SQLite runs as before.
 */

/** Where scripts/build-native.mjs puts the compiled library (same path from src/ and dist/). */
export const WALBUF_LIBRARY = fileURLToPath(new URL('../../dist/native/walbuf.so', import.meta.url));

export interface WalCoalesceStats {
  /** Whether WAL files opened from now on are buffered. */
  enabled: boolean;
  /** WAL files opened with a buffer (every connection, every thread, since the process started). */
  walOpens: number;
  /** WAL writes that went into a buffer instead of a write() of their own. */
  writesAbsorbed: number;
  /** WAL writes too large for the buffer (written at once). */
  writesDirect: number;
  /** Writes of a buffered run to the file: what the absorbed writes became. */
  flushes: number;
  flushedBytes: number;
  flushErrors: number;
  /** The write calls the flushes took (a run is written in pieces of up to 124 KiB). */
  flushWrites: number;
}

/** This thread's state (module state is per thread; the VFS registration is per process). */
let wanted = true;
let warn: (msg: string) => void = (msg) => console.warn(msg);
/** A private in-memory connection: loads the library and answers the SQL functions. */
let loader: Database.Database | null = null;
let loaded = false;
let failed = false;

/**
 * Turn the shim on (default) or off for SQLite connections opened from now on in this process
 * (config `sqliteWalCoalesce`); `warn` is where a load failure is reported (once).
 */
export function setSqliteWalCoalescing(on: boolean, opts: { warn?: (msg: string) => void } = {}): void {
  wanted = on;
  if (opts.warn) warn = opts.warn;
}

/**
 * Make the process's default VFS match the setting before a file connection is opened: load
 * the library (idempotent across threads) and switch buffering on, or switch it off if another
 * server in this process loaded it. Never throws.
 */
export function prepareSqliteVfs(): void {
  if (wanted && !loaded && !failed) {
    try {
      if (!existsSync(WALBUF_LIBRARY)) throw new Error(`${WALBUF_LIBRARY} is missing (built by scripts/build-native.mjs with a C compiler)`);
      loaderDb().loadExtension(WALBUF_LIBRARY);
      loaded = true;
    } catch (err) {
      failed = true;
      warn(`SQLite WAL write coalescing is off: ${(err as Error).message}; the server runs without it (set MAGPIE_SQLITE_WAL_COALESCE=0 to silence this)`);
    }
  }
  // Loaded in this process (here or on another thread): every new connection has the function.
  if (!loaded && wanted) return;
  try {
    loaderDb().prepare('SELECT magpie_walbuf_enable(?)').pluck().get(wanted && loaded ? 1 : 0);
  } catch {
    // Never loaded in this process: nothing to switch off.
  }
}

/** The shim's process-wide counters, or null when it is not loaded in this process. */
export function walCoalesceStats(): WalCoalesceStats | null {
  try {
    const raw = loaderDb().prepare('SELECT magpie_walbuf_stats()').pluck().get() as string;
    const s = JSON.parse(raw) as Omit<WalCoalesceStats, 'enabled'> & { enabled: number };
    return { ...s, enabled: s.enabled === 1 };
  } catch {
    return null;
  }
}

/** Whether this thread loaded the shim and it buffers new WAL files. */
export function walCoalescingActive(): boolean {
  return loaded && wanted;
}

function loaderDb(): Database.Database {
  loader ??= new Database(':memory:');
  return loader;
}
