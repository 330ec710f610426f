/**
 * The live `msg` frame of inbox item `inboxSeq` whose message serializes to `body` (the
 * message's JSON, the same text for every recipient). Built by the fan-out for each
 * recipient and again by the retry queue for a retry: the queue keeps the message's one
 * body, not each recipient's frame.
 */
export function msgFrame(inboxSeq: number, body: string): string {
  return `{"type":"msg","inboxSeq":${inboxSeq},"message":${body}}`;
}
