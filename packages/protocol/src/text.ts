import { z } from 'zod';

/**
 * One validator for every name, short text and URL a user or operator puts into Magpie
 * (nicknames, group names, announcements, greetings, avatar URLs): register, profile edit,
 * groups. Message bodies are not display text and are not checked here.
 */

/**
 * Characters no display text may contain: C0/C1 controls; bidirectional embeddings,
 * overrides, isolates and marks (U+202A–202E, U+2066–2069, U+200E/200F, U+061C: they
 * reorder what is displayed around them, "Trojan Source"); invisible and format characters
 * that hide text (U+00AD, U+034F, U+115F/1160, U+17B4/17B5, U+180E, U+200B, U+2060–2064,
 * U+3164, U+FEFF, U+FFA0, U+FFF9–FFFB, tag characters); line/paragraph separators; private-use
 * characters and lone surrogates. ZWJ/ZWNJ (U+200C/200D) stay: emoji sequences and several
 * scripts need them.
 */
const UNSAFE =
  /[\p{Cc}\p{Co}\p{Cs}\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B\u200E\u200F\u2028-\u202E\u2060-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{E0000}-\u{E007F}]/u;
/** The same, but line feeds and tabs are allowed (multi-line texts such as announcements). */
const UNSAFE_MULTILINE =
  /[\p{Co}\p{Cs}\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B\u200E\u200F\u2028-\u202E\u2060-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{E0000}-\u{E007F}]/u;

/** Why `text` is not acceptable as display text, or null when it is. */
export function unsafeTextReason(text: string, opts: { multiline?: boolean } = {}): string | null {
  const m = (opts.multiline ? UNSAFE_MULTILINE : UNSAFE).exec(text);
  if (!m) return null;
  const cp = m[0].codePointAt(0)!;
  return `contains a control, formatting or invisible character (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** Visible characters present: not only spaces and joiners. */
const VISIBLE = /[^\s\u200C\u200D]/u;

/** A single-line display name (nickname, group name): NFC, trimmed, 1…max characters, no unsafe characters. */
export function displayName(max = 64) {
  return z
    .string()
    .max(max * 4)
    .transform((s) => s.normalize('NFC').trim())
    .pipe(
      z
        .string()
        .min(1)
        .max(max)
        .regex(VISIBLE, 'must contain a visible character')
        .superRefine((s, ctx) => {
          const reason = unsafeTextReason(s);
          if (reason) ctx.addIssue({ code: 'custom', message: reason });
        }),
    );
}

/** A free text that may span lines (announcement, greeting): at most max characters, no unsafe characters except newlines and tabs. */
export function safeText(max: number) {
  return z
    .string()
    .max(max)
    .superRefine((s, ctx) => {
      const reason = unsafeTextReason(s, { multiline: true });
      if (reason) ctx.addIssue({ code: 'custom', message: reason });
    });
}

/** Why `url` is not an acceptable avatar/link URL (http(s) or a path on this server), or null. */
export function unsafeUrlReason(url: string): string | null {
  if (unsafeTextReason(url) || /[\s\\]/.test(url)) return 'contains whitespace, backslashes or control characters';
  if (url.startsWith('/')) {
    // A path on this server; `//host` is protocol-relative, i.e. another host.
    return url.startsWith('//') ? 'protocol-relative URLs are not allowed' : null;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an http(s) URL or a path starting with /';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'only http and https URLs are allowed';
  if (parsed.username || parsed.password) return 'URLs with credentials are not allowed';
  return null;
}

/** An avatar URL: absolute http(s) or a server-relative path ("/files/…"); '' where the field allows "none". */
export function avatarUrl(max = 2048) {
  return z
    .string()
    .max(max)
    .superRefine((s, ctx) => {
      if (s === '') return;
      const reason = unsafeUrlReason(s);
      if (reason) ctx.addIssue({ code: 'custom', message: reason });
    });
}

/** Usernames, after NFKC: 3–32 ASCII letters, digits, `_`, `.`, `-`. Stored as typed; unique and matched by `usernameKey`. */
export const USERNAME_PATTERN = /^[a-zA-Z0-9_.-]{3,32}$/;

/** Username as entered at register: NFKC-normalized (fullwidth forms become ASCII), then checked against USERNAME_PATTERN. */
export const Username = z
  .string()
  .max(128)
  .transform((s) => s.normalize('NFKC'))
  .pipe(z.string().regex(USERNAME_PATTERN, '3–32 letters, digits, _ . -'));

export { usernameKey } from './username-key.ts';
