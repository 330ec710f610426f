import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError, decodeClientFrame, frameIdOf, jsonNestingExceeds } from '../src/index.ts';

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
