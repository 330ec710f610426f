/**
 * The protocol's plain values without its schemas (no zod): error codes and MagpieError, the
 * username key, the event kinds. For code that must stay small — the SQLite writer thread
 * loads the store layer, and the schemas alone are ~20 MB of a thread's heap. Everything here
 * is also exported by the package's main entry.
 */
export * from './errors.ts';
export { usernameKey } from './username-key.ts';
export { LIFECYCLE_EVENT_KINDS } from './lifecycle-kinds.ts';
