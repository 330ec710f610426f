/**
 * The floor for bench/one-to-one.ts (`--relay`): a bare durable 1:1 relay, the kind issue 23
 * measured from outside ("append, group fdatasync, ACK after write"). Node's http server and
 * `ws` with the gateway's settings (no compression, no client tracking); it speaks just the
 * part of Magpie's protocol the bench uses:
 *
 * - `hello` with a bench token (`bench-NONCE-i`, bench/lib/users.ts) → a welcome of the usual
 *   shape (no authentication, no store lookup);
 * - `send {to, id, clientMsgId, kind, body}` → the message gets the next seq of its pair and an
 *   inbox position for sender and recipient (in memory), its record is appended to one file;
 *   every append of an event-loop turn is written with one write and one fdatasync, and only
 *   then the sender gets its reply (`{"type":"reply","id",result:{message,inboxSeq,duplicate}}`)
 *   and the recipient its `msg` frame, each socket's frames of that commit in one array frame
 *   (the `batch` capability);
 * - `ack` and `ping` are read and dropped.
 *
 * No idempotency, no policy checks, no per-user rows, no conversation list, no retries, no
 * metrics: what any Node + ws server pays for a durable relay on this machine. Magpie's CPU per
 * message minus this one is what Magpie adds.
 *
 * Prints `{"ready":"http://127.0.0.1:PORT"}` over IPC, as the real server does.
 * Env: RELAY_DATA_DIR (a directory for its log file; default a temporary one).
 */
import { createServer } from 'node:http';
import { mkdtempSync, openSync, writeSync, fdatasync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';

const dir = process.env.RELAY_DATA_DIR || mkdtempSync(join(tmpdir(), 'magpie-relay-'));
const fd = openSync(join(dir, 'relay.log'), 'a');

/** userId → socket; userId → inbox position; conversation → last seq. */
const online = new Map();
const inboxOf = new Map();
const seqOf = new Map();

/** The commit being gathered (this turn's sends) and whether an fdatasync is running. */
let pending = [];
let syncing = false;

function userIdOf(token) {
  const i = Number(String(token).split('-').pop());
  return `bu${String(i).padStart(7, '0')}`;
}

function nextInbox(user) {
  const v = (inboxOf.get(user) ?? 0) + 1;
  inboxOf.set(user, v);
  return v;
}

function commit() {
  if (syncing || pending.length === 0) return;
  const batch = pending;
  pending = [];
  syncing = true;
  let text = '';
  for (const m of batch) text += m.line;
  writeSync(fd, text);
  fdatasync(fd, (err) => {
    syncing = false;
    if (err) throw err;
    /** socket → frames of this commit */
    const out = new Map();
    const push = (ws, frame) => {
      if (!ws) return;
      let list = out.get(ws);
      if (!list) out.set(ws, (list = []));
      list.push(frame);
    };
    for (const m of batch) {
      const msg = JSON.stringify(m.message);
      push(m.ws, `{"type":"reply","id":${m.id},"result":{"message":${msg},"inboxSeq":${m.senderInbox},"duplicate":false}}`);
      push(online.get(m.recipient), `{"type":"msg","inboxSeq":${m.recipientInbox},"message":${msg}}`);
    }
    for (const [ws, frames] of out) ws.send(frames.length === 1 ? frames[0] : `[${frames.join(',')}]`);
    if (pending.length > 0) setImmediate(commit);
  });
}

const server = createServer((req, res) => {
  res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(`magpie_connections ${online.size}\n`);
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 256 * 1024 });
server.on('upgrade', (req, socket, head) => {
  if (!req.url?.startsWith('/ws')) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    let user = null;
    ws.on('close', () => {
      if (user && online.get(user) === ws) online.delete(user);
    });
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'send' && user) {
        const conv = user < f.to ? `d:${user}:${f.to}` : `d:${f.to}:${user}`;
        const seq = (seqOf.get(conv) ?? 0) + 1;
        seqOf.set(conv, seq);
        const time = Date.now();
        const message = { id: `m${conv}.${seq}`, conv, seq, sender: user, kind: f.kind, body: f.body, time, clientMsgId: f.clientMsgId };
        pending.push({ ws, id: f.id, message, recipient: f.to, senderInbox: nextInbox(user), recipientInbox: nextInbox(f.to), line: `${JSON.stringify(message)}\n` });
        if (pending.length === 1) setImmediate(commit);
      } else if (f.type === 'hello') {
        user = userIdOf(f.token);
        online.set(user, ws);
        const result = { version: 1, userId: user, deviceId: 'bench', inboxSeq: inboxOf.get(user) ?? 0, ringStart: 0, sync: 'none', heartbeatMs: 40000, supers: [], instructions: [], serverTime: Date.now(), limits: { maxFrameBytes: 65536, maxMessageBytes: 16384 } };
        ws.send(JSON.stringify({ type: 'reply', id: f.id, result }));
      }
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  process.send?.({ ready: `http://127.0.0.1:${port}` });
});
process.on('SIGTERM', () => process.exit(0));
