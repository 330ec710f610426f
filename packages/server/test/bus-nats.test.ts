import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import type { BusEvent } from '../src/bus/bus.ts';
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

/**
 * Reconnects: a private nats-server on a free port is stopped and started again; the
 * client reconnects and restores its subscriptions (watches made before the outage work
 * after it). Skips without the nats-server binary.
 */
const NATS_BIN = process.env.MAGPIE_NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
describe('NatsBus across a NATS restart', { skip: !existsSync(NATS_BIN) && `no ${NATS_BIN}` }, () => {
  it('re-subscribes after the server comes back', async () => {
    const port = await freePort();
    const servers = `nats://127.0.0.1:${port}`;
    let server = await startNats(port);
    const a = await NatsBus.connect({ servers });
    const b = await NatsBus.connect({ servers });
    try {
      const got: BusEvent[] = [];
      b.subscribe((e) => got.push(e));
      await b.watchUser('u:1');
      a.publish({ type: 'deliver', userId: 'u:1', frame: '{"n":1}' });
      await until(() => got.length === 1);
      server.kill('SIGKILL');
      await once(server, 'exit');
      server = await startNats(port);
      // Both clients reconnect (reconnectTimeWait 1 s) and resend their SUBs.
      await until(() => {
        a.publish({ type: 'deliver', userId: 'u:1', frame: '{"n":2}' });
        return got.some((e) => e.type === 'deliver' && e.frame === '{"n":2}');
      }, 10_000);
    } finally {
      await Promise.all([a.close(), b.close()]);
      server.kill('SIGKILL');
    }
  });
});

function startNats(port: number): Promise<ChildProcess> {
  const proc = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  return until(() => new Promise<boolean>((resolve) => {
    const s = createConnection(port, '127.0.0.1', () => (s.end(), resolve(true)));
    s.on('error', () => resolve(false));
  })).then(() => proc);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
