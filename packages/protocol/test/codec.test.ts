import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

/** A hand-written check accepts exactly what `schema` accepts (refusing with a MagpieError otherwise), with an equal result. */
function agreesWithSchema(raw: unknown, schema: { safeParse(x: unknown): { success: boolean; data?: unknown } }, check: (x: unknown) => unknown): void {
  const parsed = schema.safeParse(raw);
  let got: unknown;
  try {
    got = check(raw);
  } catch (err) {
    assert.ok(err instanceof MagpieError, String(err));
    assert.equal(parsed.success, false, `refused what the schema accepts: ${JSON.stringify(raw)}`);
    return;
  }
  assert.equal(parsed.success, true, `accepted what the schema refuses: ${JSON.stringify(raw)}`);
  assert.deepEqual(got, parsed.data);
}
import { ClientFrame, MagpieError, TextBody, decodeClientFrame, frameIdOf, jsonNestingExceeds, validateClientFrame, validateMessageBody } from '../src/index.ts';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('JSON nesting bound (deeply nested frames overflowed the validator: issue 13)', () => {
  it('counts arrays and objects, the top level being depth 1', () => {
    assert.equal(jsonNestingExceeds('{"a":{"b":[1]}}', 3), false);
    assert.equal(jsonNestingExceeds('{"a":{"b":[1]}}', 2), true);
    assert.equal(jsonNestingExceeds(nested(32), 32), false);
    assert.equal(jsonNestingExceeds(nested(33), 32), true);
    // More brackets than the limit side by side (the character scan decides) or mixed: depth is what counts.
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: Array.from({ length: 40 }, () => ({ b: [1] })) }), 32), false);
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: Array.from({ length: 40 }, () => ({ b: [1] })) }), 3), true);
    assert.equal(jsonNestingExceeds(JSON.stringify([[[{ a: [{}] }]]]), 5), true);
    assert.equal(jsonNestingExceeds(JSON.stringify([[[{ a: [{}] }]]]), 6), false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ s: '[[[[[[{{{{{{\\"[[[[', t: '"]]]]' + '['.repeat(100) });
    assert.equal(jsonNestingExceeds(text, 1), false);
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: ['\\', { b: '"' }] }), 2), true);
  });

  it('a 100 000-level text is refused in well under a millisecond per frame', () => {
    const text = `{"type":"send","id":1,"body":${nested(100_000)}}`;
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) assert.equal(jsonNestingExceeds(text, 32), true);
    assert.ok((performance.now() - t0) / 100 < 1, 'the scan stops at the first level too deep');
  });

  it('decodeClientFrame answers nesting_too_deep, not a stack overflow', () => {
    const text = `{"type":"instruction.result","id":7,"instructionId":"i","ok":true,"result":${nested(5000)}}`;
    assert.throws(
      () => decodeClientFrame(text),
      (e) => e instanceof MagpieError && e.code === 'nesting_too_deep',
    );
    // The highest limit the configuration allows (256) stays far from the validator's stack limit.
    const deepest = `{"type":"instruction.result","id":7,"instructionId":"i","ok":true,"result":${nested(255)}}`;
    assert.equal(decodeClientFrame(deepest, { maxDepth: 256 }).type, 'instruction.result');
    assert.equal(frameIdOf(text), undefined, 'the id of a too-deep text is not parsed');
    assert.equal(frameIdOf('{"id":5,"x":[[1]]}'), 5);
  });
});

describe('send and ack frames checked without the schema walk', () => {
  const send = { type: 'send', id: 7, clientMsgId: 'c1', to: 'bob', kind: 'text', body: { text: 'hi' } };
  const frames: unknown[] = [
    send,
    { ...send, to: undefined, conv: 'g:1' },
    { type: 'send', id: 7, clientMsgId: 'c1', conv: 'g:1', kind: 'text', body: null },
    { ...send, id: 2 ** 31 },
    { ...send, id: 2 ** 31 + 1 },
    { ...send, id: -1 },
    { ...send, id: 1.5 },
    { ...send, id: '7' },
    { type: 'send', clientMsgId: 'c1', to: 'bob', kind: 'text', body: 1 },
    { type: 'send', id: 7, to: 'bob', kind: 'text', body: 1 },
    { type: 'send', id: 7, clientMsgId: 'c1', to: 'bob', body: 1 },
    { type: 'send', id: 7, clientMsgId: 'c1', to: 'bob', kind: 'text' },
    { type: 'send', id: 7, clientMsgId: 'c1', kind: 'text', body: 1 },
    { ...send, conv: 'g:1' },
    { ...send, clientMsgId: '' },
    { ...send, clientMsgId: 'x'.repeat(64) },
    { ...send, clientMsgId: 'x'.repeat(65) },
    { ...send, to: 'u'.repeat(65) },
    { ...send, to: undefined, conv: 'c'.repeat(129) },
    { ...send, kind: 'k'.repeat(33) },
    { ...send, kind: 7 },
    { ...send, extra: 1 },
    { ...send, mentions: 'all', to: undefined, conv: 'g:1' },
    { ...send, receipt: true },
    JSON.parse('{"type":"send","id":1,"clientMsgId":"c","to":"b","kind":"text","body":1,"__proto__":{"x":1}}'),
    { type: 'ack', inboxSeq: 5 },
    { type: 'ack', inboxSeq: Number.MAX_SAFE_INTEGER },
    { type: 'ack', inboxSeq: Number.MAX_SAFE_INTEGER + 2 },
    { type: 'ack', inboxSeq: -1 },
    { type: 'ack', inboxSeq: 0.5 },
    { type: 'ack' },
    { type: 'ack', inboxSeq: 5, id: 1 },
    { type: 'ping' },
  ];
  const hello = { type: 'hello', id: 0, versions: [1], token: 't0k', inboxSeq: 0, caps: ['ack', 'batch'], app: { platform: 'other', version: 'bench' } };
  const hellos: unknown[] = [
    hello,
    { type: 'hello', id: 3, versions: [1, 2], token: 't', inboxSeq: 12 },
    { ...hello, app: {} },
    { ...hello, app: { version: '' } },
    { ...hello, app: { platform: 'ios' } },
    { ...hello, app: { version: 'v'.repeat(32) } },
    { ...hello, app: { version: 'v'.repeat(33) } },
    { ...hello, app: { version: 1 } },
    { ...hello, app: { platform: 'toaster' } },
    { ...hello, app: { platform: null } },
    { ...hello, app: { platform: 'web', extra: 1 } },
    { ...hello, app: null },
    { ...hello, app: [] },
    { ...hello, app: 'web' },
    { ...hello, caps: [] },
    { ...hello, caps: ['ack', 'ack'] },
    { ...hello, caps: ['push'] },
    { ...hello, caps: Array(16).fill('ack') },
    { ...hello, caps: Array(17).fill('ack') },
    { ...hello, caps: 'ack' },
    { ...hello, caps: null },
    { ...hello, versions: [] },
    { ...hello, versions: [1, 2, 3, 4, 5, 6, 7, 8] },
    { ...hello, versions: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
    { ...hello, versions: [-3, 0] },
    { ...hello, versions: [1.5] },
    { ...hello, versions: [Number.MAX_SAFE_INTEGER] },
    { ...hello, versions: [Number.MAX_SAFE_INTEGER + 1] },
    { ...hello, versions: ['1'] },
    { ...hello, versions: 1 },
    { ...hello, token: '' },
    { ...hello, token: 'x'.repeat(512) },
    { ...hello, token: 'x'.repeat(513) },
    { ...hello, token: 5 },
    { ...hello, inboxSeq: -1 },
    { ...hello, inboxSeq: 0.5 },
    { ...hello, inboxSeq: Number.MAX_SAFE_INTEGER },
    { ...hello, inboxSeq: Number.MAX_SAFE_INTEGER + 2 },
    { ...hello, id: 2 ** 31 },
    { ...hello, id: 2 ** 31 + 1 },
    { ...hello, id: -1 },
    { ...hello, id: null },
    { ...hello, id: undefined },
    { ...hello, versions: undefined },
    { ...hello, token: undefined },
    { ...hello, inboxSeq: undefined },
    { ...hello, extra: true },
    JSON.parse('{"type":"hello","id":1,"versions":[1],"token":"t","inboxSeq":0,"__proto__":{"x":1}}'),
    JSON.parse('{"type":"hello","id":1,"versions":[1],"token":"t","inboxSeq":0,"app":{"__proto__":{"x":1}}}'),
    JSON.parse('{"type":"hello","id":-0,"versions":[-0],"token":"t","inboxSeq":-0}'),
  ];

  it('hello: accept and refuse exactly what the schema does, with an equal result', () => {
    for (const raw of hellos.map((f) => JSON.parse(JSON.stringify(f)) as unknown)) agreesWithSchema(raw, ClientFrame, validateClientFrame);
  });

  it('accept and refuse exactly what the schema does, with an equal result', () => {
    for (const raw of frames.map((f) => JSON.parse(JSON.stringify(f)) as unknown)) agreesWithSchema(raw, ClientFrame, validateClientFrame);
  });
});

describe('text bodies checked without the schema walk', () => {
  const bodies: unknown[] = [
    { text: 'hi' },
    { text: '' },
    { text: ' ' },
    { text: 'x'.repeat(20_000) },
    { text: 1 },
    { text: null },
    { text: ['a'] },
    {},
    { text: 'hi', extra: 1 },
    { text: 'hi', replyTo: 3 },
    { text: 'hi', replyTo: 0 },
    { text: 'hi', edited: 5 },
    { texts: 'hi' },
    'hi',
    null,
    ['hi'],
    7,
  ];
  it('accept and refuse exactly what TextBody does, with an equal result', () => {
    const raws = [...bodies.map((b) => JSON.parse(JSON.stringify(b)) as unknown), JSON.parse('{"text":"a","__proto__":{"x":1}}'), JSON.parse('{"__proto__":{"text":"a"}}'), Object.assign(Object.create(null), { text: 'a' }), Object.create({ text: 'inherited' })];
    for (const raw of raws) agreesWithSchema(raw, TextBody, (x) => validateMessageBody('text', x));
  });
});
