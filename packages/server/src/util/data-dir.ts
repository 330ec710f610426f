import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Keep the data directory private to the server's user: the directory (and directories in
 * it) 0700, its files 0600. It holds the databases, and push.db holds the VAPID private key
 * and the receipt signing key (see docs/operations.md, "Keys and secrets"). Run at start
 * (fixes directories made by older versions or a default umask) and again once the stores
 * have created their files. Symbolic links are left alone. The directory must be dedicated
 * to Magpie: its mode is changed.
 */
export function secureDataDir(dir: string, opts: { create?: boolean } = {}): void {
  // Everything the process creates from now on (databases, WAL files, media blobs and
  // uploads) is private from the start: no walk over a large media tree is needed.
  process.umask(0o077);
  if (opts.create ?? true) mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if (!existsSync(dir)) return;
  tighten(dir, 0);
}

function tighten(dir: string, depth: number): void {
  chmodIfLooser(dir, 0o700);
  // Files made by older versions sit at the top level; deeper ones were made under the umask.
  if (depth > 1) return;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) continue; // removed meanwhile (a WAL file at checkpoint)
    if (st.isDirectory()) tighten(path, depth + 1);
    else if (st.isFile()) chmodIfLooser(path, 0o600);
  }
}

function chmodIfLooser(path: string, mode: number): void {
  try {
    if ((lstatSync(path).mode & 0o777 & ~mode) !== 0) chmodSync(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
