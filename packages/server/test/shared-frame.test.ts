import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as wsModule from 'ws';
import type { EventEmitter } from 'node:events';

/** ws's frame parser; @types/ws does not declare it, the package's ESM entry exports it by name. */
type FrameReceiver = EventEmitter & { write(chunk: Buffer): void };
const Receiver = (wsModule as unknown as { Receiver: new (opts: { isServer: boolean }) => FrameReceiver }).Receiver;
import { SharedFrame } from '../src/gateway/connection.ts';

/** Decode one server→client frame with ws's own client-side parser. */
function parse(bytes: Buffer): Promise<{ text: string; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const r = new Receiver({ isServer: false });
    r.on('message', (data: Buffer, isBinary: boolean) => resolve({ text: data.toString('utf8'), isBinary }));
    r.on('error', reject);
    r.write(bytes);
  });
}

describe('SharedFrame', () => {
  it('encodes a text frame ws parses, at every payload-length form (7-bit, 16-bit, 64-bit)', async () => {
    for (const n of [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]) {
      const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2); // two UTF-8 bytes per é: exactly n bytes
      const frame = new SharedFrame(text);
      const got = await parse(frame.bytes());
      assert.equal(got.isBinary, false, `n=${n}`);
      assert.equal(got.text, text, `n=${n}`);
      assert.equal(frame.bytes(), frame.bytes(), 'built once, the same Buffer every time');
    }
  });
});
