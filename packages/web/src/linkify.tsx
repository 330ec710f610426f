import { LinkifyIt } from 'linkify-it';
import type { ReactNode } from 'react';

const linkify = new LinkifyIt();
/** Only these schemes become links (never javascript:, data: or others). */
const SAFE = /^(https?:\/\/|mailto:)/i;

/** Text with its web and mail addresses as links that open in a new tab without an opener. */
export function Linkified(props: { text: string }): ReactNode {
  const { text } = props;
  const found = linkify.test(text) ? (linkify.match(text) ?? []) : [];
  const out: ReactNode[] = [];
  let at = 0;
  for (const m of found) {
    if (!SAFE.test(m.url)) continue;
    if (m.index > at) out.push(text.slice(at, m.index));
    out.push(
      <a key={m.index} href={m.url} target="_blank" rel="noopener noreferrer" data-testid="message-link">
        {m.text}
      </a>,
    );
    at = m.lastIndex;
  }
  if (at === 0) return text;
  if (at < text.length) out.push(text.slice(at));
  return out;
}
