/**
 * The composer's words (issue 14): why sending is blocked, failure texts with a retry only
 * where it can work, mention matching by display name in any script, the size check.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { durationText, failureText, matchMembers, sendBlockText, textBodyBytes } from '../src/view-models/compose.ts';
import { systemNoticeText } from '../src/view-models/format.ts';

const member = (mutedUntil = 0, role: 'owner' | 'admin' | 'member' = 'member') => ({ role, mutedUntil });

describe('composer texts', () => {
  it('a muted member is told for how long, in minutes, not a UTC timestamp', () => {
    const now = 1_000_000;
    assert.equal(sendBlockText({ member: member(now + 12 * 60_000), muteAll: false, dismissed: false }, now), 'You are muted for 12 min.');
    assert.equal(sendBlockText({ member: member(now + 30_000), muteAll: false, dismissed: false }, now), 'You are muted for 1 min.');
    assert.equal(sendBlockText({ member: member(now + 3 * 3_600_000), muteAll: false, dismissed: false }, now), 'You are muted for 3 h.');
    assert.equal(durationText(5 * 86_400_000), '5 days');
    assert.equal(sendBlockText({ member: member(now - 1), muteAll: false, dismissed: false }, now), null, 'an expired mute no longer blocks');
  });

  it('only admins may send when everyone is muted; a dismissed group or a removed member cannot send', () => {
    assert.equal(sendBlockText({ member: member(), muteAll: true, dismissed: false }, 0), 'Only admins can send messages in this group.');
    assert.equal(sendBlockText({ member: member(0, 'admin'), muteAll: true, dismissed: false }, 0), null);
    assert.match(sendBlockText({ member: member(), muteAll: false, dismissed: true }, 0) ?? '', /dismissed/);
    assert.match(sendBlockText({ member: null, muteAll: false, dismissed: false }, 0) ?? '', /not a member/);
  });

  it('Retry is offered only where a retry can succeed', () => {
    assert.deepEqual(failureText({ code: 'message_too_large', message: 'x' }, false), { text: 'Not sent: the message is too long.', canRetry: false });
    assert.equal(failureText({ code: 'forbidden', message: 'x' }, false).canRetry, false);
    assert.equal(failureText({ code: 'muted', message: 'muted until 2026-12-03T10:00:00.000Z' }, true).canRetry, false, 'still muted');
    assert.equal(failureText({ code: 'muted', message: 'x' }, false).canRetry, true, 'the mute was lifted');
    assert.doesNotMatch(failureText({ code: 'muted', message: 'muted until 2026-12-03T10:00:00.000Z' }, true).text, /\d{4}-\d\d-\d\dT/);
    for (const code of ['rate_limited', 'unavailable', 'internal', 'timeout', 'disconnected', 'not_connected']) assert.equal(failureText({ code, message: '' }, false).canRetry, true, code);
  });

  it('mentions match display names by prefix or substring in any script, prefix first', () => {
    const members = [
      { id: 'u1', username: 'zhangwei', nickname: '张伟' },
      { id: 'u2', username: 'liwei', nickname: '李伟' },
      { id: 'u3', username: 'bob', nickname: 'Bob Builder' },
      { id: 'u4', username: 'anna', nickname: 'Ｂｏｂｂｙ' },
    ];
    assert.deepEqual(matchMembers(members, '张', 6).map((m) => m.id), ['u1']);
    assert.deepEqual(matchMembers(members, '伟', 6).map((m) => m.id).sort(), ['u1', 'u2'], 'substring of a CJK name');
    assert.deepEqual(matchMembers(members, 'bo', 6).map((m) => m.id), ['u3', 'u4'], 'case- and width-insensitive');
    assert.deepEqual(matchMembers(members, 'li', 6).map((m) => m.id), ['u2'], 'username prefix');
    assert.deepEqual(matchMembers(members, '', 2).length, 2);
  });

  it('the size check counts UTF-8 bytes of the JSON body, as the server does', () => {
    assert.equal(textBodyBytes('a'), Buffer.byteLength(JSON.stringify({ text: 'a' })));
    assert.equal(textBodyBytes('伟'), Buffer.byteLength(JSON.stringify({ text: '伟' })));
  });

  it('an announcement change notice carries the new text', () => {
    const t = systemNoticeText({ event: 'group_updated', data: { by: 'u1', announcement: 'Lunch on Friday' } }, () => 'Ann');
    assert.equal(t, 'Ann updated the announcement: “Lunch on Friday”');
  });
});
