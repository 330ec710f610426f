import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { walletRoutes as R, type OpenResult } from '@magpie/protocol';
import { adminGuard } from '../http/admin-auth.ts';
import { parseBody as parse } from '../http/validation.ts';
import { RestApi } from '../http/rest.ts';
import type { AccountService } from '../services/account-service.ts';
import type { RedPacketService } from './redpacket-service.ts';
import type { WalletService } from './wallet-service.ts';

const Fen = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const GatewayBody = z.strictObject({ userId: z.string().min(1).max(64), amount: Fen, reference: z.string().min(1).max(128) });
const SettleBody = z.strictObject({ result: z.enum(['paid', 'reversed']) });

/**
 * REST routes of wallets and red packets (the users' routes' schemas: @magpie/protocol rest/wallet.ts):
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
  deps: {
    accounts: AccountService;
    redPackets: RedPacketService;
    wallet: WalletService;
    adminToken: string | undefined;
    /** Runs before a send (the payment PIN, wallet/payments/pin-service.ts); throws to refuse. */
    guardSend?: (userId: string, pin: string | undefined) => Promise<void>;
    /** Runs after each open (live `redpacket.claimed` frames, wallet/claim-frames.ts). */
    onOpened?: (packetId: string, userId: string, result: OpenResult) => void;
  },
): void {
  const { redPackets, wallet } = deps;
  const api = new RestApi(app, deps.accounts, deps.adminToken);
  const admin = adminGuard(deps.adminToken);

  api.route(R.sendPacket, async ({ principal, body, reply }) => {
    const { pin, ...input } = body;
    const guard = deps.guardSend;
    const out = await redPackets.send(principal, input, guard ? { authorize: () => guard(principal.userId, pin) } : {});
    void reply.code(out.duplicate ? 200 : 201);
    return out;
  });
  api.route(R.packet, async ({ principal, params }) => redPackets.details(principal.userId, params.id));
  api.route(R.grab, async ({ principal, params }) => redPackets.grab(principal.userId, params.id));
  api.route(R.open, async ({ principal, params }) => {
    const result = await redPackets.open(principal.userId, params.id);
    deps.onOpened?.(params.id, principal.userId, result);
    return result;
  });
  api.route(R.balance, async ({ principal }) => wallet.balance(principal.userId));
  api.route(R.entries, async ({ principal, query }) => wallet.entries(principal.userId, query));

  app.post('/api/admin/wallet/topup', async (req) => {
    admin(req);
    return wallet.topUp(parse(GatewayBody, req.body));
  });
  app.post('/api/admin/wallet/withdraw', async (req) => {
    admin(req);
    return wallet.withdraw(parse(GatewayBody, req.body));
  });
  app.post<{ Params: { reference: string } }>('/api/admin/wallet/withdrawals/:reference/settle', async (req) => {
    admin(req);
    return wallet.settle(req.params.reference, parse(SettleBody, req.body).result);
  });
  app.get('/api/admin/reconcile', async (req) => {
    admin(req);
    return wallet.reconcile();
  });
}
