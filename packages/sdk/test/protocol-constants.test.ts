import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '@magpie/protocol';
import * as C from '../src/protocol-constants.ts';

test('the SDK\'s copies of protocol constants match @magpie/protocol', () => {
  assert.deepEqual([...C.PROTOCOL_VERSIONS], [...P.PROTOCOL_VERSIONS]);
  assert.equal(C.CLOSE_UNAUTHORIZED, P.CloseCodes.unauthorized.code);
  assert.equal(C.CLOSE_TOKEN_REVOKED, P.CloseCodes.token_revoked.code);
  assert.equal(C.CLOSE_KICKED, P.CloseCodes.kicked.code);
  assert.equal(C.CLOSE_UNSUPPORTED_VERSION, P.CloseCodes.unsupported_version.code);
  assert.equal(C.CLOSE_DRAINING, P.CloseCodes.draining.code);
  for (let code = 1000; code < 5000; code++) assert.equal(C.shouldReconnect(code), P.shouldReconnect(code), `close code ${code}`);
  for (const c of Object.values(P.CloseCodes)) assert.equal(C.shouldReconnect(c.code), c.reconnect, `close code ${c.code}`);
  assert.deepEqual(Object.keys(C.ERROR_RETRYABLE).sort(), [...P.errorCodeList].sort());
  for (const code of P.errorCodeList) assert.equal(C.ERROR_RETRYABLE[code], P.ErrorCodes[code].retry, code);
});

test('a draining close\'s reason gives the reconnect delay, capped', () => {
  assert.equal(C.drainDelay('retryAfterMs=1234'), 1234);
  assert.equal(C.drainDelay('retryAfterMs=0'), 0);
  assert.equal(C.drainDelay('retryAfterMs=999999999'), C.MAX_DRAIN_DELAY_MS);
  assert.equal(C.drainDelay('The server is shutting down'), null);
});
