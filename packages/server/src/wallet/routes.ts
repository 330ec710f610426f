import { walletAdminRoutes as A, walletRoutes as R, type OpenResult } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
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
  api: RestApi,
  deps: {
    redPackets: RedPacketService;
    wallet: WalletService;
    /** Runs before a send (the payment PIN, wallet/payments/pin-service.ts); throws to refuse. */
    guardSend?: (userId: string, pin: string | undefined) => Promise<void>;
    /** Runs after each open (live `redpacket.claimed` frames, wallet/claim-frames.ts). */
    onOpened?: (packetId: string, userId: string, result: OpenResult) => void;
  },
): void {
  const { redPackets, wallet } = deps;

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

  api.route(A.topUp, async ({ body }) => wallet.topUp(body));
  api.route(A.withdraw, async ({ body }) => wallet.withdraw(body));
  api.route(A.settle, async ({ params, body }) => wallet.settle(params.reference, body.result));
  api.route(A.reconcile, async () => wallet.reconcile());
}
