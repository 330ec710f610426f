import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/config.ts';
import { parseBody } from '../http/validation.ts';
import { IssueInstruction, type InstructionService } from './instruction-service.ts';
import type { InstructionStore } from './instruction-store.ts';
import { SqliteInstructionStore } from './sqlite-instruction-store.ts';

export async function openInstructionStore(config: Config): Promise<InstructionStore> {
  if (config.store === 'sqlite') return new SqliteInstructionStore(join(config.dataDir, 'magpie.db'));
  const { PostgresInstructionStore } = await import('./postgres-instruction-store.ts');
  const store = new PostgresInstructionStore({ url: config.store, max: config.pg.pools.instructions, idleTimeoutS: config.pg.idleTimeoutS });
  await store.migrate();
  return store;
}

const AuditQuery = z.strictObject({ userId: z.string().min(1).max(64), limit: z.coerce.number().int().min(1).max(500).default(50) });

/**
 * Operator API (admin token):
 *   POST /api/admin/instructions  {userId, deviceId?, kind, payload?, issuedBy?} → 201 {instruction}
 *   GET  /api/admin/instructions?userId=…&limit=…  → {instructions} (audit, newest first)
 */
export function registerInstructionRoutes(app: FastifyInstance, service: InstructionService, admin: (req: FastifyRequest) => void): void {
  app.post('/api/admin/instructions', async (req, reply) => {
    admin(req);
    reply.code(201);
    return { instruction: await service.issue(parseBody(IssueInstruction, req.body)) };
  });
  app.get('/api/admin/instructions', async (req) => {
    admin(req);
    const q = parseBody(AuditQuery, req.query);
    return { instructions: await service.audit(q.userId, q.limit) };
  });
}
