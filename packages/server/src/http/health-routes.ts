import { MagpieError, opsRoutes } from '@magpie/protocol';
import type { SqlEngine } from '../db/engine.ts';
import type { Store } from '../store/store.ts';
import type { Bus } from '../bus/bus.ts';
import type { RestApi } from './rest.ts';

/** What readiness looks at: the node's own database handles, the Bus, and whether it is draining. */
export interface HealthSources {
  node: string;
  db: SqlEngine;
  store: Store;
  bus: Bus;
  draining: () => boolean;
  /** Each check must answer within this time (a hung PostgreSQL or NATS is "failed", not a hung probe). */
  timeoutMs?: number;
}

function within(p: Promise<unknown>, ms: number): Promise<'ok' | 'failed'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('failed'), ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve('ok');
      },
      () => {
        clearTimeout(t);
        resolve('failed');
      },
    );
  });
}

/** Readiness checks: one round trip each to the database (shared engine and the message store) and to the Bus. */
export async function readiness(s: HealthSources): Promise<{ database: 'ok' | 'failed'; bus: 'ok' | 'failed' }> {
  const ms = s.timeoutMs ?? 2000;
  const [engine, store, bus] = await Promise.all([within(s.db.get('SELECT 1 AS one'), ms), within(s.store.getUser('-ready-probe-'), ms), within(s.bus.check(), ms)]);
  return { database: engine === 'ok' && store === 'ok' ? 'ok' : 'failed', bus };
}

/** GET /api/live and GET /api/ready (docs/operations.md "Health"). */
export function registerHealthRoutes(api: RestApi, s: HealthSources): void {
  api.route(opsRoutes.live, async () => ({ ok: true as const, node: s.node }));
  api.route(opsRoutes.ready, async () => {
    if (s.draining()) throw new MagpieError('unavailable', 'draining: this node is shutting down', { details: { node: s.node } });
    const checks = await readiness(s);
    if (checks.database !== 'ok' || checks.bus !== 'ok') throw new MagpieError('unavailable', 'not ready', { details: { node: s.node, checks } });
    return { ok: true as const, node: s.node, checks };
  });
}
