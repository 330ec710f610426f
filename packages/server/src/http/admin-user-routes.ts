import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountService } from '../services/account-service.ts';

/**
 * Operator API for accounts (admin token, see admin-auth.ts):
 *   POST /api/admin/users/:id/disable          → {user, revoked}  no login, no connection; open sockets get kicked{reason:"admin"}
 *   POST /api/admin/users/:id/enable           → {user, revoked: 0}
 *   POST /api/admin/users/:id/revoke-sessions  → {revoked}        every session ends with kicked{reason:"admin"}
 */
export function registerAdminUserRoutes(app: FastifyInstance, accounts: AccountService, admin: (req: FastifyRequest) => void): void {
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/disable', async (req) => {
    admin(req);
    return accounts.setDisabled(req.params.id, true);
  });
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/enable', async (req) => {
    admin(req);
    return accounts.setDisabled(req.params.id, false);
  });
  app.post<{ Params: { id: string } }>('/api/admin/users/:id/revoke-sessions', async (req) => {
    admin(req);
    return { revoked: await accounts.adminRevokeAll(req.params.id) };
  });
}
