import type { MessageSearchHit, MessageSearchResult, Subject } from '@magpie/protocol';
import { MagpieClientError } from './errors.ts';
import type { RestApi } from './rest.ts';

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

type Call = <T>(method: string, path: string, opts: { body?: unknown; token?: string }) => Promise<T>;

function restCall(rest: RestApi): Call {
  const call = (rest as unknown as { call?: Call }).call;
  if (typeof call !== 'function') throw new TypeError('SearchApi: this RestApi has no request helper');
  return call.bind(rest) as Call;
}

/**
 * Server-side message search over the user's own conversations, and the business subjects of
 * subject conversations. Errors are MagpieClientError with the server's code (`invalid` for
 * an empty query or a bad cursor, `forbidden`, `unauthorized`).
 */
export class SearchApi {
  private readonly call: Call;
  private readonly token: () => string | undefined;
  private readonly subjects = new Map<string, Promise<Subject | null>>();

  constructor(rest: RestApi, token: string | (() => string | undefined)) {
    this.call = restCall(rest);
    this.token = typeof token === 'function' ? token : () => token;
  }

  private req<T>(method: string, path: string): Promise<T> {
    const token = this.token();
    if (!token) return Promise.reject(new MagpieClientError('unauthorized', 'no session token'));
    return this.call<T>(method, path, { token });
  }

  /** One page of matches, newest first: every whitespace-separated term must occur (substring, CJK included). */
  search(query: string, filters: SearchFilters = {}): Promise<MessageSearchResult> {
    const p = new URLSearchParams({ q: query });
    for (const [k, v] of Object.entries(filters)) if (v !== undefined) p.set(k, String(v));
    return this.req('GET', `/api/search?${p.toString()}`);
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
      p = this.req<{ subject: Subject | null }>('GET', `/api/conversations/${encodeURIComponent(conv)}/subject`).then((r) => r.subject);
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
