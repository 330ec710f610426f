import { instructionRoutes } from '@magpie/protocol';
import type { SqlEngine } from '../db/index.ts';
import type { RestApi } from '../http/rest.ts';
import type { InstructionService } from './instruction-service.ts';
import type { InstructionStore } from './instruction-store.ts';
import { SqlInstructionStore } from './sql-instruction-store.ts';

/** The instruction store on the server's database (opened and migrated by db/index.ts openDatabase). */
export function openInstructionStore(db: SqlEngine): InstructionStore {
  return new SqlInstructionStore(db);
}

/** Operator API (admin token): issue instructions and read their audit (@magpie/protocol rest/ops.ts `instructionRoutes`). */
export function registerInstructionRoutes(api: RestApi, service: InstructionService): void {
  api.route(instructionRoutes.issue, async ({ body }) => ({ instruction: await service.issue(body) }));
  api.route(instructionRoutes.audit, async ({ query }) => ({ instructions: await service.audit(query.userId, query.limit) }));
}
