import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError, formatDuration, messageKinds, messagePreview, validateMessageBody } from '../src/index.ts';

describe('rich message kinds', () => {
  it('registers image, video, voice, file, location and card', () => {
    for (const k of ['image', 'video', 'voice', 'file', 'location', 'card']) assert.ok(messageKinds().includes(k), k);
  });

  it('every rich kind requires a text fallback', () => {
    const bodies: Record<string, unknown> = {
      image: { upload: 'up_abcdefgh12' },
      video: { upload: 'up_abcdefgh12' },
      voice: { upload: 'up_abcdefgh12' },
      file: { upload: 'up_abcdefgh12' },
      location: { lat: 1, lng: 2 },
      card: { card: 'user', id: 'u1' },
    };
    for (const [kind, body] of Object.entries(bodies)) {
      assert.throws(() => validateMessageBody(kind, body), MagpieError, `${kind} without fallback`);
      assert.doesNotThrow(() => validateMessageBody(kind, { ...(body as object), fallback: `[${kind}]` }), kind);
    }
  });

  it('refuses bad values: upload ids, coordinates, unknown fields, waveform range', () => {
    assert.throws(() => validateMessageBody('image', { fallback: 'x', upload: '../etc/passwd' }));
    assert.throws(() => validateMessageBody('location', { fallback: 'x', lat: 90.5, lng: 0 }));
    assert.throws(() => validateMessageBody('location', { fallback: 'x', lat: 0, lng: -181 }));
    assert.throws(() => validateMessageBody('file', { fallback: 'x', upload: 'up_abcdefgh12', path: '/tmp' }));
    assert.throws(() => validateMessageBody('voice', { fallback: 'x', upload: 'up_abcdefgh12', waveform: [256] }));
    assert.throws(() => validateMessageBody('card', { fallback: 'x', card: 'channel', id: 'c' }));
  });

  it('previews: "[Image]", "[Voice] 0:12", file names, Chinese labels', () => {
    assert.equal(messagePreview('image', { fallback: 'x', upload: 'up_1' }), '[Image]');
    assert.equal(messagePreview('image', { caption: 'sunset' }), '[Image] sunset');
    assert.equal(messagePreview('voice', { duration: 12.4 }), '[Voice] 0:12');
    assert.equal(messagePreview('video', { duration: 75 }), '[Video] 1:15');
    assert.equal(messagePreview('file', { name: 'report.pdf' }), '[File] report.pdf');
    assert.equal(messagePreview('location', { label: 'Lab' }), '[Location] Lab');
    assert.equal(messagePreview('voice', { duration: 3 }, 'zh-CN'), '[语音] 0:03');
    assert.equal(messagePreview('text', { text: 'hi' }), 'hi');
    assert.equal(formatDuration(3725), '1:02:05');
  });

  it('a kind from a newer client degrades to its text fallback', () => {
    assert.equal(messagePreview('sticker', { fallback: '[Sticker] 🐦', pack: 'birds' }), '[Sticker] 🐦');
    assert.equal(messagePreview('poll', {}), '[poll]');
  });
});
