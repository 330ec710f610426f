import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WelcomeResult } from '@magpie/protocol';
import { welcomeFrame } from '../src/gateway/ws-gateway.ts';

describe('the hello reply written out by hand (issue 23, connect cost)', () => {
  const limits = { maxFrameBytes: 65536, maxMessageBytes: 16384 };
  const cases = [
    { id: 0, userId: 'u_0123456789abcdef', deviceId: 'bench', sync: { mode: 'none', latest: 0, ringStart: 1 }, supers: [], instructions: [] },
    { id: 2 ** 31, userId: 'a"b\\c\u2028\u0000é😀', deviceId: 'd\n"x"', sync: { mode: 'full', latest: Number.MAX_SAFE_INTEGER, ringStart: Number.MAX_SAFE_INTEGER - 4999 }, supers: [{ conv: 's:"1"', lastSeq: 12 }, { conv: 's:2', lastSeq: 0 }], instructions: [] },
    { id: 7, userId: 'u', deviceId: 'd', sync: { mode: 'incremental', latest: 42, ringStart: 1 }, supers: [], instructions: [{ type: 'instruction', instructionId: 'i1', kind: 'wipe', payload: { a: [1, 'x"'] } }] },
  ];

  it('is exactly JSON.stringify of the reply object, in the same key order', () => {
    for (const c of cases) {
      const serverTime = Date.now();
      const result = { version: 1, userId: c.userId, deviceId: c.deviceId, inboxSeq: c.sync.latest, ringStart: c.sync.ringStart, sync: c.sync.mode, heartbeatMs: 40000, supers: c.supers, instructions: c.instructions, serverTime, limits: { maxFrameBytes: limits.maxFrameBytes, maxMessageBytes: limits.maxMessageBytes } };
      const text = welcomeFrame(c.id, 1, c.userId, c.deviceId, c.sync, 40000, c.supers, c.instructions, serverTime, limits);
      assert.equal(text, JSON.stringify({ type: 'reply', id: c.id, result }));
      const parsed = JSON.parse(text) as { result: unknown };
      if (c.instructions.length === 0) assert.equal(WelcomeResult.safeParse(parsed.result).success, true);
    }
  });
});
