import type { Migration } from '../migrate.ts';
import { m0001 } from './0001-instructions.ts';
import { m0002 } from './0002-media.ts';
import { m0003 } from './0003-social.ts';
import { m0004 } from './0004-core.ts';
import { m0005 } from './0005-push.ts';
import { m0006 } from './0006-wallet.ts';
import { m0007 } from './0007-lifecycle.ts';
import { m0008 } from './0008-search.ts';
import { m0009 } from './0009-receipts.ts';
import { m0010 } from './0010-payments.ts';
import { m0012 } from './0012-webhooks.ts';
import { m0013 } from './0013-console.ts';
import { m0014 } from './0014-notifications.ts';
import { m0015 } from './0015-retention.ts';
import { m0017 } from './0017-event-counts.ts';
import { m0019 } from './0019-group-change-users.ts';
import { m0020 } from './0020-append-fast-path.ts';
import { m0021 } from './0021-search-automerge.ts';
import { m0022 } from './0022-search-progress.ts';
import { m0023 } from './0023-delivery-marks.ts';
import { m0024 } from './0024-inbox-without-rowid.ts';
import { m0025 } from './0025-search-file.ts';
import { m0026 } from './0026-pg-hot-updates.ts';

/**
 * The schema of the server's database, in order. Append only: a released migration is never
 * edited or removed; a database records the migrations it has run (see ../migrate.ts).
 */
export const MIGRATIONS: readonly Migration[] = [m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0010, m0012, m0013, m0014, m0015, m0017, m0019, m0020, m0021, m0022, m0023, m0024, m0025, m0026];
