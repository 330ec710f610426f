import type { MessageSearchResult, Subject } from '@magpie/protocol';
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

export type { MessageSearchHit, MessageSearchResult, Subject } from '@magpie/protocol';

/** Filters of a message search; all optional. */
export interface SearchFilters {
  /** Only this conversation (in-chat search). */
  conv?: string;
  sender?: string;
  /** Message kind: `text`, `file`, `image`, … */
  kind?: string;
  /** Sent at or after (ms since the epoch). */
  from?: number;
  /** Sent before (ms). */
  to?: number;
  /** `next` of the previous page. */
  before?: string;
  /** Page size (≤ 100, default 20). */
  limit?: number;
}


/**
 * Server-side message search over the user's own conversations, and the business subjects of
 * subject conversations. Errors are MagpieClientError with the server's code (`invalid` for
 * an empty query or a bad cursor, `forbidden`, `unauthorized`).
 */
export class SearchApi {
  private readonly http: AuthedRest;
  private readonly subjects = new Map<string, Promise<Subject | null>>();

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  /** One page of matches, newest first: every whitespace-separated term must occur (substring, CJK included). */
  search(query: string, filters: SearchFilters = {}): Promise<MessageSearchResult> {
    const p = new URLSearchParams({ q: query });
    for (const [k, v] of Object.entries(filters)) if (v !== undefined) p.set(k, String(v));
    return this.http.req('GET', `/api/search?${p.toString()}`);
  }

  /**
   * The subject of a conversation (null for a conversation without one). Only subject
   * conversation ids (see `isSubjectConversation`) are asked; answers are cached per
   * conversation until `forgetSubject`.
   */
  subject(conv: string): Promise<Subject | null> {
    if (!isSubjectConversation(conv)) return Promise.resolve(null);
    let p = this.subjects.get(conv);
    if (!p) {
      p = this.http.req<{ subject: Subject | null }>('GET', `/api/conversations/${encodeURIComponent(conv)}/subject`).then((r) => r.subject);
      p.catch(() => this.subjects.delete(conv));
      this.subjects.set(conv, p);
    }
    return p;
  }

  /** Drop a cached subject (e.g. after a `subject` notice in that conversation). */
  forgetSubject(conv: string): void {
    this.subjects.delete(conv);
  }
}

/** A subject conversation id is `d:<a>:<b>:<type>.<id>`: a direct conversation with a fourth part. */
export function isSubjectConversation(conv: string): boolean {
  const parts = conv.split(':');
  return parts[0] === 'd' && parts.length === 4 && parts[3]!.indexOf('.') > 0;
}
