/**
 * The searchable text of a message body: what a user typed and would look for. Kinds
 * without such text (system notices, custom cards, voice) are not indexed.
 */
export function searchableText(kind: string, body: unknown): string {
  if (!body || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  switch (kind) {
    case 'text':
      return str(b.text);
    case 'image':
    case 'video':
      return str(b.caption);
    case 'file':
      return str(b.name);
    case 'location':
      return [str(b.name), str(b.address)].filter(Boolean).join(' ');
    case 'redpacket':
      return str(b.greeting);
    default:
      return '';
  }
}

/**
 * A query split into terms (whitespace separated, each matched as a substring, all must
 * match). Empty terms are dropped; at most 8 terms are kept.
 */
export function queryTerms(query: string): string[] {
  return query
    .normalize('NFKC')
    .split(/\s+/u)
    .filter((t) => t.length > 0)
    .slice(0, 8);
}

/** `term` for LIKE with `\` as the escape character. */
export function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** An FTS5 string literal: the term as one phrase (a substring for the trigram tokenizer). */
export function ftsPhrase(term: string): string {
  return `"${term.replace(/"/g, '""')}"`;
}

/** The trigram tokenizer indexes runs of 3 characters (code points): shorter terms cannot use it. */
export function indexable(term: string): boolean {
  return [...term].length >= 3;
}
