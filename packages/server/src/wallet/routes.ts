import type { FastifyInstance } from 'fastify';
import { walletAdminRoutes as A, walletRoutes as R } from '@magpie/protocol';
import { RestApi } from '../http/rest.ts';
import type { AccountService } from '../services/account-service.ts';
import type { RedPacketService } from './redpacket-service.ts';
import type { WalletService } from './wallet-service.ts';

/**
 * REST routes of wallets and red packets (schemas: @magpie/protocol rest/wallet.ts, walletRoutes and walletAdminRoutes):
 *   POST /api/redpackets                  send (201)
 *   GET  /api/redpackets/:id              packet, claim list, best luck (members)
 *   POST /api/redpackets/:id/grab         grab (filter)
 *   POST /api/redpackets/:id/open         open (claim and credit)
 *   GET  /api/wallet                      own balance
 *   GET  /api/wallet/entries              own ledger entries, newest first
 * Operator (Bearer adminToken; disabled when no token is configured):
 *   POST /api/admin/wallet/topup          { userId, amount, reference }
 *   POST /api/admin/wallet/withdraw       { userId, amount, reference }
 *   POST /api/admin/wallet/withdrawals/:reference/settle   { result: paid | reversed }
 *   GET  /api/admin/reconcile             reconciliation report (HTTP 200 either way; `ok` says)
 */
export function registerWalletRoutes(
  app: FastifyInstance,
  deps: { accounts: AccountService; redPackets: RedPacketService; wallet: WalletService; adminToken: string | undefined },
): void {
  const { redPackets, wallet } = deps;
  const api = new RestApi(app, deps.accounts, deps.adminToken);

  api.route(R.sendPacket, async ({ principal, body, reply }) => {
    const out = await redPackets.send(principal, body);
    void reply.code(out.duplicate ? 200 : 201);
    return out;
  });
  api.route(R.packet, async ({ principal, params }) => redPackets.details(principal.userId, params.id));
  api.route(R.grab, async ({ principal, params }) => redPackets.grab(principal.userId, params.id));
  api.route(R.open, async ({ principal, params }) => redPackets.open(principal.userId, params.id));
  api.route(R.balance, async ({ principal }) => wallet.balance(principal.userId));
  api.route(R.entries, async ({ principal, query }) => wallet.entries(principal.userId, query));

  api.route(A.topUp, async ({ body }) => wallet.topUp(body));
  api.route(A.withdraw, async ({ body }) => wallet.withdraw(body));
  api.route(A.settle, async ({ params, body }) => wallet.settle(params.reference, body.result));
  api.route(A.reconcile, async () => wallet.reconcile());
}
