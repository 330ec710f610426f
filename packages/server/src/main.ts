import { getHeapStatistics } from 'node:v8';
import { loadConfig } from './config/config.ts';
import { createMagpieServer, type MagpieServer } from './app.ts';
import { warmUpEventLoop } from './loop-warmup.ts';

/** `npm start`: one Magpie node configured from MAGPIE_* env and an optional config file. */
const config = loadConfig();
let server: MagpieServer;
let url: string;
try {
  server = await createMagpieServer(config);
  url = await server.start();
} catch (err) {
  // An operator's mistake (NATS or PostgreSQL unreachable, port taken): one clear line, no stack.
  const e = err as Error;
  process.stderr.write(`magpie: cannot start: ${(e.message || String(err)).split('\n')[0]}\n`);
  if (process.env.MAGPIE_LOG_LEVEL === 'debug' || process.env.MAGPIE_LOG_LEVEL === 'trace') process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}
server.log.info({ url, store: server.store.kind, dataDir: config.dataDir }, `Magpie listening on ${url}`);
// The young generation this process was given (node flags: packages/server/launch.json, or
// NODE_OPTIONS; docs/operations.md "Memory"), so an operator and the benchmarks see it.
const heapSizeLimit = getHeapStatistics().heap_size_limit;
const semiSpaceMiB = maxSemiSpaceFlag([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]);
if (semiSpaceMiB !== undefined) server.log.info({ maxSemiSpaceSizeMiB: semiSpaceMiB, heapSizeLimit }, `V8 young generation: --max-semi-space-size=${semiSpaceMiB}`);
else server.log.info({ maxSemiSpaceSizeMiB: 'default', heapSizeLimit }, "V8 young generation: node's default (--max-semi-space-size sets it; docs/operations.md, Memory)");
if (process.send) process.send({ ready: url, heapSizeLimit, maxSemiSpaceSizeMiB: semiSpaceMiB ?? null });

// The event loop's warm-up (loop-warmup.ts): a throwaway node on a private database, in the
// background behind real work; a failure only leaves the code cold.
const warmUpStop = new AbortController();
const warmUp = config.loopWarmUp
  ? warmUpEventLoop(config, createMagpieServer, { signal: warmUpStop.signal }).then((r) => {
      if (r.ok) server.log.info({ ms: r.ms, cpuMs: r.cpuMs, messages: r.messages }, `event loop warmed up in ${r.ms} ms`);
      else if (r.error !== 'stopped') server.log.warn({ ms: r.ms, err: r.error }, 'event loop warm-up failed; carrying on');
    })
  : Promise.resolve();

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.log.info({ signal }, 'shutting down');
  const { delayMs, timeoutMs } = server.config.drain;
  const force = setTimeout(() => process.exit(1), delayMs + timeoutMs + 10_000);
  force.unref();
  warmUpStop.abort();
  await warmUp;
  // SIGTERM (orchestrators, rolling updates): drain first, so clients move to other nodes
  // and running sends finish; SIGINT (a terminal's Ctrl-C) stops at once.
  if (signal === 'SIGTERM') {
    try {
      await server.drain();
    } catch (err) {
      server.log.error({ err: (err as Error).message }, 'drain failed; stopping');
    }
  }
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

/** The last --max-semi-space-size given to node (MiB), as V8 takes it; undefined if none. */
function maxSemiSpaceFlag(args: string[]): number | undefined {
  let mib: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(args[i]!);
    if (!m) continue;
    const v = Number(m[1] ?? args[i + 1]);
    if (Number.isFinite(v)) mib = v;
  }
  return mib;
}
