/**
 * NATS for tests: nats://127.0.0.1:4222 (override with MAGPIE_TEST_NATS). When the server
 * is unreachable the tests are skipped with a message — unless MAGPIE_REQUIRE_SERVICES=1,
 * when they fail.
 */
import { connect } from '@nats-io/transport-node';

export const NATS_URL = process.env.MAGPIE_TEST_NATS ?? 'nats://127.0.0.1:4222';

/** null when reachable; otherwise the reason to skip. Throws when services are required. */
export async function natsUnavailable(): Promise<string | null> {
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 3000, maxReconnectAttempts: 0 });
    await nc.close();
    return null;
  } catch (err) {
    const why = `NATS unreachable at ${NATS_URL} (${(err as Error).message}); start it (see docs/operations.md) or set MAGPIE_TEST_NATS`;
    if (process.env.MAGPIE_REQUIRE_SERVICES === '1') throw new Error(`MAGPIE_REQUIRE_SERVICES=1: ${why}`);
    console.warn(`SKIP: ${why}`);
    return why;
  }
}
