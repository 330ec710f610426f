/**
 * The web client's languages: every English text has a Simplified Chinese one with the same
 * placeholders, none is left in English, and the browser's language list picks the UI
 * language. (The browser test in polish.test.ts checks the screens.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { en } from '../src/i18n/en.ts';
import { zhCN } from '../src/i18n/zh-CN.ts';

type Tree = { [k: string]: string | Tree };

function flatten(t: Tree, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of Object.entries(t)) {
    if (typeof v === 'string') out[prefix + k] = v;
    else flatten(v, `${prefix}${k}.`, out);
  }
  return out;
}

const placeholders = (s: string) => [...s.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]).sort();
/** Texts that read the same in both languages (names, symbols, punctuation). */
const SAME = new Set(['app.name', 'notice.updated']);

describe('translations', () => {
  const E = flatten(en as unknown as Tree);
  const Z = flatten(zhCN as unknown as Tree);

  it('zh-CN has exactly the English keys', () => {
    assert.deepEqual(Object.keys(Z).sort(), Object.keys(E).sort());
  });

  it('every text keeps its placeholders', () => {
    for (const k of Object.keys(E)) assert.deepEqual(placeholders(Z[k] ?? ''), placeholders(E[k]!), k);
  });

  it('no Chinese text is left in English', () => {
    const english = Object.keys(E).filter((k) => !SAME.has(k) && !/[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]/.test(Z[k] ?? '') && /[A-Za-z]{3}/.test(E[k]!.replace(/\{\{\w+\}\}/g, '')));
    assert.deepEqual(english, []);
  });
});

describe('language from the browser', () => {
  it('picks the first language we ship from navigator.languages', async () => {
    // index.ts initialises i18next in the page; pickLanguage is pure.
    const g = globalThis as Record<string, unknown>;
    g.localStorage ??= { getItem: () => null, setItem() {}, removeItem() {} };
    g.document ??= { documentElement: { setAttribute() {} } };
    g.addEventListener ??= () => undefined;
    Object.defineProperty(globalThis, 'navigator', { value: { languages: ['en-US'], language: 'en-US' }, configurable: true });
    const { pickLanguage } = await import('../src/i18n/index.ts');
    assert.equal(pickLanguage(['zh-CN', 'en']), 'zh-CN');
    assert.equal(pickLanguage(['zh']), 'zh-CN');
    assert.equal(pickLanguage(['zh-TW']), 'zh-CN', 'the only Chinese we ship');
    assert.equal(pickLanguage(['de-DE', 'zh-Hans-CN', 'en']), 'zh-CN');
    assert.equal(pickLanguage(['de-DE', 'en-GB', 'zh-CN']), 'en');
    assert.equal(pickLanguage(['fr']), 'en', 'fallback');
    assert.equal(pickLanguage([]), 'en');
  });
});

describe("the SDK's English sentences in Chinese", () => {
  it('composer reasons, failures, notices and previews', async () => {
    const g = globalThis as Record<string, unknown>;
    g.localStorage ??= { getItem: () => null, setItem() {}, removeItem() {} };
    g.document ??= { documentElement: { setAttribute() {} } };
    g.addEventListener ??= () => undefined;
    const { i18next } = await import('../src/i18n/index.ts');
    const { sdkText, noticeText, previewText, statusText } = await import('../src/i18n/sdk-text.ts');
    await i18next.changeLanguage('en');
    assert.equal(sdkText('You are muted for 12 min.'), 'You are muted for 12 min.', 'English: the SDK text as it is');
    await i18next.changeLanguage('zh-CN');
    assert.equal(sdkText('You are muted for 12 min.'), '你已被禁言，还剩 12分钟。');
    assert.equal(sdkText('You are muted for 2 h.'), '你已被禁言，还剩 2小时。');
    assert.equal(sdkText('Only admins can send messages in this group.'), '该群仅管理员可以发言。');
    assert.equal(sdkText('Not sent: too many messages at once.'), '未发送：短时间内消息太多。');
    assert.equal(sdkText('This message is too long to send (40 KB; the limit is 32 KB).'), '消息太长，无法发送（40 KB，上限为 32 KB）。');
    assert.equal(sdkText('Friend request sent'), '好友请求已发送');
    assert.equal(sdkText('Invitation waits for approval (2)'), '邀请等待审批（2）');
    assert.equal(sdkText('some error the server wrote'), 'some error the server wrote', 'unknown: as it is');
    const nameOf = (id: string) => (id === 'me' ? 'you' : id === 'b' ? 'Bob' : 'Cat');
    assert.equal(noticeText({ event: 'member_muted', data: { by: 'b', user: 'me' } }, nameOf), 'Bob 禁言了 你');
    assert.equal(noticeText({ event: 'members_invited', data: { by: 'me', users: ['b', 'c'] } }, nameOf), '你 邀请了 Bob、Cat');
    assert.equal(noticeText({ event: 'members_invited', data: { by: 'me', users: ['b', 'c', 'd'], count: 1000 } }, nameOf), '你 邀请了 Bob、Cat、Cat 及其他 997 人');
    assert.equal(noticeText({ event: 'group_updated', data: { by: 'b', name: 'Trio', muteAll: true } }, nameOf), 'Bob 将群名改为“Trio”，开启了全员禁言');
    assert.equal(previewText({ kind: 'group', draft: '', preview: 'You: hi' }), '你：hi');
    assert.equal(previewText({ kind: 'group', draft: '', preview: 'Bob: hi' }), 'Bob：hi');
    assert.equal(previewText({ kind: 'direct', draft: 'later', preview: 'hi' }), '[草稿] later');
    assert.equal(statusText({ own: true, state: 'delivered', deliveredCount: 3 }), '已送达 3 人');
    await i18next.changeLanguage('en');
    assert.equal(noticeText({ event: 'member_muted', data: { by: 'b', user: 'me' } }, nameOf), 'Bob muted you');
    assert.equal(noticeText({ event: 'members_invited', data: { by: 'b', users: ['b', 'c', 'd'], count: 5 } }, nameOf), 'Bob invited Bob, Cat, Cat and 2 more');
    assert.equal(noticeText({ event: 'member_left', data: { user: 'me' } }, nameOf), 'You left');
  });
});
