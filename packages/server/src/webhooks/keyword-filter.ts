import { MagpieError } from '@magpie/protocol';
import type { BodyHook } from '../services/message-service.ts';
import type { WebhooksConfig } from '../config/webhooks-config.ts';

const fold = (s: string) => s.normalize('NFKC').toLowerCase();
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The built-in before-send hook (and the example of one): words of the configured list in a
 * message's text (text messages' `text`, media captions, every kind's `fallback`) refuse the
 * message with the configured reason (`rejected`), or are masked with `*`. Matching is
 * case-insensitive on NFKC-folded text, so full-width and compatibility forms match too; it
 * matches substrings, which is what CJK text needs (no spaces between words).
 */
export function keywordFilter(cfg: WebhooksConfig['keywords']): BodyHook | null {
  const words = [...new Set(cfg.words.map(fold).filter(Boolean))].sort((a, b) => b.length - a.length);
  if (words.length === 0) return null;
  const pattern = new RegExp(words.map(escape).join('|'), 'gu');
  const fields = ['text', 'caption', 'fallback'] as const;
  return async (_sender, _kind, body) => {
    if (typeof body !== 'object' || body === null) return body;
    const b = body as Record<string, unknown>;
    let changed: Record<string, unknown> | null = null;
    for (const f of fields) {
      const v = b[f];
      if (typeof v !== 'string') continue;
      const folded = fold(v);
      pattern.lastIndex = 0;
      if (!pattern.test(folded)) continue;
      if (cfg.action === 'deny') throw new MagpieError('rejected', cfg.reason);
      // Masking works on the folded text (same length as what the user sees in almost all cases).
      pattern.lastIndex = 0;
      changed ??= { ...b };
      changed[f] = folded.length === v.length ? maskAt(v, folded, pattern) : folded.replace(pattern, (m) => '*'.repeat([...m].length));
    }
    return changed ?? body;
  };
}

/** Mask in the original string the ranges that match in its folded form (same length). */
function maskAt(original: string, folded: string, pattern: RegExp): string {
  const chars = original.split('');
  for (const m of folded.matchAll(pattern)) for (let i = m.index; i < m.index + m[0].length; i++) chars[i] = '*';
  return chars.join('');
}
