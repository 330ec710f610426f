import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RED_PACKET_SPLITS, safeText } from '@magpie/protocol';
import { adminGuard } from '../http/admin-auth.ts';
import { bearer, parseBody as parse } from '../http/validation.ts';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { RedPacketService } from './redpacket-service.ts';
import type { WalletService } from './wallet-service.ts';

const Fen = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Id = z.string().min(1).max(64);
const SendPacket = z
  .strictObject({
    clientMsgId: z.string().min(1).max(64),
    to: Id.optional(),
    conv: z.string().min(1).max(128).optional(),
    split: z.enum(RED_PACKET_SPLITS).default('random'),
    /** Random split: total in fen. */
    total: Fen.optional(),
    /** Fixed split: each share in fen. */
    amount: Fen.optional(),
    count: z.number().int().positive().max(1_000_000),
    greeting: safeText(100).optional(),
    exclusiveTo: Id.nullable().optional(),
  })
  .refine((b) => (b.to === undefined) !== (b.conv === undefined), { message: 'exactly one of `to` and `conv` is required' })
  .refine((b) => (b.split === 'fixed' ? b.amount !== undefined && b.total === undefined : b.total !== undefined && b.amount === undefined), {
    message: 'a random split takes `total`, a fixed split takes `amount`',
  });
const EntriesQuery = z.strictObject({ before: z.coerce.number().int().positive().optional(), limit: z.coerce.number().int().min(1).max(200).optional() });
const GatewayBody = z.strictObject({ userId: Id, amount: Fen, reference: z.string().min(1).max(128) });
const SettleBody = z.strictObject({ result: z.enum(['paid', 'reversed']) });

/**
 * REST routes of wallets and red packets:
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
  const { accounts, redPackets, wallet } = deps;
  const auth = (req: FastifyRequest): Promise<Principal> => accounts.authenticate(bearer(req));
  const admin = adminGuard(deps.adminToken);

  app.post('/api/redpackets', async (req, reply) => {
    const p = await auth(req);
    const out = await redPackets.send(p, parse(SendPacket, req.body));
    reply.code(out.duplicate ? 200 : 201);
    return out;
  });
  app.get<{ Params: { id: string } }>('/api/redpackets/:id', async (req) => {
    const p = await auth(req);
    return redPackets.details(p.userId, req.params.id);
  });
  app.post<{ Params: { id: string } }>('/api/redpackets/:id/grab', async (req) => {
    const p = await auth(req);
    return redPackets.grab(p.userId, req.params.id);
  });
  app.post<{ Params: { id: string } }>('/api/redpackets/:id/open', async (req) => {
    const p = await auth(req);
    return redPackets.open(p.userId, req.params.id);
  });
  app.get('/api/wallet', async (req) => wallet.balance((await auth(req)).userId));
  app.get('/api/wallet/entries', async (req) => {
    const p = await auth(req);
    return wallet.entries(p.userId, parse(EntriesQuery, req.query));
  });

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
