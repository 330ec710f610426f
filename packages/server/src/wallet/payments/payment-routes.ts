import { paymentRoutes as R } from '@magpie/protocol';
import type { RestApi } from '../../http/rest.ts';
import type { PaymentsService } from './payments-service.ts';
import type { PinService } from './pin-service.ts';

/**
 * REST routes of the payment PIN and of top-ups and withdrawals (schemas: @magpie/protocol
 * rest/payments.ts; refusals: docs/protocol.md "Wallet and red packets").
 */
export function registerPaymentRoutes(api: RestApi, deps: { pins: PinService; payments: PaymentsService }): void {
  const { pins, payments } = deps;
  api.route(R.pinStatus, async ({ principal }) => pins.status(principal.userId));
  api.route(R.setPin, async ({ principal, body }) => pins.set(principal.userId, body.pin));
  api.route(R.resetPin, async ({ principal, body, raw }) => pins.reset(principal, body.password, body.pin, raw.ip));
  api.route(R.topUp, async ({ principal, body }) => payments.topUp(principal.userId, body));
  api.route(R.withdraw, async ({ principal, body }) => payments.withdraw(principal.userId, body));
  api.route(R.payments, async ({ principal, query }) => payments.list(principal.userId, query));
  api.route(R.settleWithdrawal, async ({ params, body }) => payments.settle(params.id, body.result, body.reason));
}
