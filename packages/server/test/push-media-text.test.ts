import { it } from 'node:test';
import assert from 'node:assert/strict';
import { imText } from '../src/push/policy.ts';

it('push text for media messages: "[Image]", "[Voice] 0:12", in the user’s language; privacy mode still hides it', () => {
  const text = (kind: string, body: unknown, locale = 'en', hide = false) => imText({ senderName: 'Ann', message: { kind, body }, count: 1, hide, appName: 'Magpie', locale }).body;
  assert.equal(text('image', { fallback: '[Image]', upload: 'up_x' }), '[Image]');
  assert.equal(text('voice', { fallback: '[Voice]', upload: 'up_x', duration: 12.2 }), '[Voice] 0:12');
  assert.equal(text('file', { fallback: '[File]', upload: 'up_x', name: 'q3.pdf' }), '[File] q3.pdf');
  assert.equal(text('image', { fallback: '[Image]', upload: 'up_x' }, 'zh-CN'), '[图片]');
  assert.equal(text('sticker', { fallback: '[Sticker]' }), '[Sticker]', 'an unknown kind shows its fallback');
  assert.equal(text('image', { fallback: '[Image]', upload: 'up_x' }, 'en', true), 'New message');
});
