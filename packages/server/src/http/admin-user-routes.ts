import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountService } from '../services/account-service.ts';

/**
 * Operator API for accounts (admin token, see admin-auth.ts):
 *   POST /api/admin/users/:id/disable          → {user, revoked}  no login, no connection; open sockets get kicked{reason:"admin"}
 *   POST /api/admin/users/:id/enable           → {user, revoked: 0}
 *   POST /api/admin/users/:id/revoke-sessions  → {revoked}        every session ends with kicked{reason:"admin"}
 */
export function registerAdminUserRoutes(app: FastifyInstance, accounts: AccountService, admin: (req: FastifyRequest) => void, audit: AuditSink = async () => {}): void {
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/disable', async (req) => {
    admin(req);
    const out = await accounts.setDisabled(req.params.id, true);
    await audit('user.disable', req.params.id, { revoked: out.revoked });
    return out;
  });
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/enable', async (req) => {
    admin(req);
    const out = await accounts.setDisabled(req.params.id, false);
    await audit('user.enable', req.params.id, {});
    return out;
  });
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/revoke-sessions', async (req) => {
    admin(req);
    const revoked = await accounts.adminRevokeAll(req.params.id);
    await audit('user.revoke-sessions', req.params.id, { revoked });
    return { revoked };
  });
}

/** Records an operator-token action in the console's audit log (as admin "token"). */
export type AuditSink = (action: string, target: string, detail: unknown) => Promise<void>;
