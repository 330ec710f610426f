import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SqlEngine } from '../db/index.ts';
import { parseBody } from '../http/validation.ts';
import { IssueInstruction, type InstructionService } from './instruction-service.ts';
import type { InstructionStore } from './instruction-store.ts';
import { SqlInstructionStore } from './sql-instruction-store.ts';

/** The instruction store on the server's database (opened and migrated by db/index.ts openDatabase). */
export function openInstructionStore(db: SqlEngine): InstructionStore {
  return new SqlInstructionStore(db);
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
