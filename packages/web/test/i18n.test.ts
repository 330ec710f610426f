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
