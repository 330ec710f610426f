import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { NatsBus } from '../src/bus/nats-bus.ts';
import { runBusContract } from './bus-contract.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';

/**
 * The NATS Bus: each open() is one node with its own connection, as separate processes
 * would be. A random subject prefix keeps this run apart from others on the same server.
 */
const skip = await natsUnavailable();
if (skip === null) {
  const prefix = `magpietest_${randomBytes(4).toString('hex')}`;
  runBusContract('nats (two nodes)', { cluster: true, open: () => NatsBus.connect({ servers: NATS_URL, prefix, name: 'magpie-bus-test' }) });
} else {
  describe('Bus contract: nats', () => {
    it('needs a NATS server', { skip }, () => {});
  });
}
