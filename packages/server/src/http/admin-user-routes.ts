import { adminUserRoutes as R } from '@magpie/protocol';
import type { AccountService } from '../services/account-service.ts';
import type { RestApi } from './rest.ts';

/** Operator API for accounts (admin token): disable, enable, revoke sessions (@magpie/protocol rest/ops.ts `adminUserRoutes`). Each action is audited. */
export function registerAdminUserRoutes(api: RestApi, accounts: AccountService, audit: AuditSink = async () => {}): void {
  api.route(R.disable, async ({ params }) => {
    const out = await accounts.setDisabled(params.id, true);
    await audit('user.disable', params.id, { revoked: out.revoked });
    return out;
  });
  api.route(R.enable, async ({ params }) => {
    const out = await accounts.setDisabled(params.id, false);
    await audit('user.enable', params.id, {});
    return out;
  });
  api.route(R.revokeSessions, async ({ params }) => {
    const revoked = await accounts.adminRevokeAll(params.id);
    await audit('user.revoke-sessions', params.id, { revoked });
    return { revoked };
  });
}

/** Records an operator-token action in the console's audit log (as admin "token"). */
export type AuditSink = (action: string, target: string, detail: unknown) => Promise<void>;
