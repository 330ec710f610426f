import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObtainedTracker } from '../src/gateway/obtained.ts';

test('ObtainedTracker: a cumulative ACK takes the ranges it ends and clips the one it cuts, in order', () => {
  const t = new ObtainedTracker();
  t.start(0);
  for (const s of [1, 2, 3, 5, 6, 9]) t.gave(s);
  // Ranges (0,3], (4,6], (8,9]; an ACK of 5 ends the first and cuts the second.
  assert.deepEqual(t.ackSegments(5), [
    { from: 0, to: 3 },
    { from: 4, to: 5 },
  ]);
  // What is left: (4,6] (its part above 5 still counts) and (8,9].
  assert.deepEqual(t.ackSegments(9), [
    { from: 4, to: 6 },
    { from: 8, to: 9 },
  ]);
  assert.deepEqual(t.ackSegments(9), []);
  // Emptied, the tracker goes on (the live path: one message, its ACK, the next).
  t.gave(10);
  assert.deepEqual(t.ackSegments(10), [{ from: 9, to: 10 }]);
  t.gave(12);
  assert.deepEqual(t.ackSegments(11), []);
  assert.deepEqual(t.ackSegments(12), [{ from: 11, to: 12 }]);
});
