/**
 * Languages of the web client (i18next + react-i18next): English and Simplified Chinese.
 * The language follows the browser (navigator.languages) until the user picks one in
 * Settings (kept in localStorage); <html lang> always says which one is shown.
 */
import i18next from 'i18next';
import { initReactI18next } from 'react-i18next';
import { en } from './en.ts';
import { zhCN } from './zh-CN.ts';

export const LANGUAGES = ['en', 'zh-CN'] as const;
export type Language = (typeof LANGUAGES)[number];
/** Each language's name in itself (the Settings picker shows these, whatever the UI language). */
export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', 'zh-CN': '简体中文' };

const KEY = 'magpie.language';

declare module 'i18next' {
  interface CustomTypeOptions {
    defaultNS: 'translation';
    resources: { translation: typeof en };
  }
}

/** The first of the browser's languages that we ship; any Chinese reads the Simplified one, else English. */
export function pickLanguage(preferred: readonly string[]): Language {
  for (const p of preferred) {
    const l = p.toLowerCase();
    if (l.startsWith('zh')) return 'zh-CN';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

/** The language chosen in Settings, or null to follow the browser. */
export function savedLanguage(): Language | null {
  try {
    const v = localStorage.getItem(KEY);
    return (LANGUAGES as readonly string[]).includes(v ?? '') ? (v as Language) : null;
  } catch {
    return null;
  }
}

export function browserLanguage(): Language {
  return pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]);
}

export function currentLanguage(): Language {
  return (LANGUAGES as readonly string[]).includes(i18next.language) ? (i18next.language as Language) : 'en';
}

void i18next.use(initReactI18next).init({
  resources: { en: { translation: en }, 'zh-CN': { translation: zhCN } },
  lng: savedLanguage() ?? browserLanguage(),
  fallbackLng: 'en',
  supportedLngs: [...LANGUAGES],
  interpolation: { escapeValue: false },
  returnNull: false,
  initAsync: false,
});

const setLang = (l: string) => document.documentElement.setAttribute('lang', l);
setLang(currentLanguage());
i18next.on('languageChanged', setLang);
addEventListener('languagechange', () => {
  if (!savedLanguage()) void i18next.changeLanguage(browserLanguage());
});

/** Pick a language (null: follow the browser again); kept for the next visit. */
export async function setLanguage(l: Language | null): Promise<void> {
  try {
    if (l) localStorage.setItem(KEY, l);
    else localStorage.removeItem(KEY);
  } catch {
    /* private mode: the choice lasts for this page */
  }
  await i18next.changeLanguage(l ?? browserLanguage());
}

export const t = i18next.t.bind(i18next);
export { i18next };
