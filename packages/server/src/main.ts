import { loadConfig } from './config/config.ts';
import { createMagpieServer } from './app.ts';

/** `npm start`: one Magpie node configured from MAGPIE_* env and an optional config file. */
const config = loadConfig();
const server = await createMagpieServer(config);
const url = await server.start();
server.log.info({ url, store: server.store.kind, dataDir: config.dataDir }, `Magpie listening on ${url}`);
if (process.send) process.send({ ready: url });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.log.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
