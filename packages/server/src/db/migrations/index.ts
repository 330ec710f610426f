import type { Migration } from '../migrate.ts';
import { m0001 } from './0001-instructions.ts';
import { m0002 } from './0002-media.ts';
import { m0003 } from './0003-social.ts';
import { m0008 } from './0008-search.ts';

/**
 * The schema of the server's database, in order. Append only: a released migration is never
 * edited or removed. Stores not yet on the shared engine (messages, wallet, push)
 * still create their own tables; each moves here as a migration when it is ported.
 */
export const MIGRATIONS: readonly Migration[] = [m0001, m0002, m0003, m0008];
