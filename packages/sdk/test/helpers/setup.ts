import { MagpieClient, type MagpieClientEvents, type MagpieClientOptions } from '../../src/index.ts';
import { MemoryStore } from '../../src/local-store.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { FakeServer } from './fake-server.ts';

export interface Harness {
  clock: FakeClock;
  server: FakeServer;
  store: MemoryStore;
  client: MagpieClient;
  events: { [K in keyof MagpieClientEvents]: MagpieClientEvents[K][] };
}

/** A client wired to a fake server under a fake clock; random is fixed at 0.5 (no jitter). */
export function harness(opts: Partial<MagpieClientOptions> = {}, server?: FakeServer, clock?: FakeClock): Harness {
  const c = clock ?? new FakeClock();
  const s = server ?? new FakeServer(c);
  const store = (opts.store as MemoryStore | undefined) ?? new MemoryStore();
  let n = 0;
  const client = new MagpieClient({
    url: 'ws://fake/ws',
    token: s.token,
    webSocketFactory: s.factory,
    clock: c,
    random: () => 0.5,
    newId: () => `cm-${++n}`,
    store,
    ...opts,
  });
  const events = { state: [], connection: [], message: [], conversation: [], delivered: [], deliveredCounts: [], kicked: [], syncProgress: [], instruction: [], error: [], frame: [] } as Harness['events'];
  for (const k of Object.keys(events) as (keyof MagpieClientEvents)[]) {
    client.on(k, (p: unknown) => (events[k] as unknown[]).push(p));
  }
  return { clock: c, server: s, store, client, events };
}

/** connect() and let the fake time run until online. */
export async function connectOnline(h: Harness): Promise<void> {
  const p = h.client.connect();
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 1);
  await p;
  await flush();
}
