/**
 * The floor for bench/connect.ts (`--relay`): a bare WebSocket server on Node's http server
 * with the same `ws` settings as the gateway (no compression, no client tracking) that
 * answers `hello` with a welcome of the same shape and size — no authentication, no store,
 * no presence, no limits. What any Node + ws server pays per connect + hello on this machine;
 * Magpie's figure minus this one is what Magpie adds.
 *
 * Prints `{"ready":"http://127.0.0.1:PORT"}` over IPC (as the real server does); serves
 * `magpie_connections N` at /metrics so the bench can wait for it the same way.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

let connections = 0;
const server = createServer((req, res) => {
  res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(`magpie_connections ${connections}\n`);
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 256 * 1024 });
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    connections++;
    ws.on('close', () => connections--);
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type !== 'hello') return;
      const result = { version: 1, userId: 'u_0123456789abcdef', deviceId: 'd_0123456789', inboxSeq: 0, ringStart: 0, sync: 'none', heartbeatMs: 40000, supers: [], instructions: [], serverTime: Date.now(), limits: { maxFrameBytes: 65536, maxMessageBytes: 16384 } };
      ws.send(JSON.stringify({ type: 'reply', id: f.id, result }));
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  process.send?.({ ready: `http://127.0.0.1:${port}` });
});
process.on('SIGTERM', () => process.exit(0));
