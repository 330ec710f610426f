/**
 * Event kinds: they change earlier messages and are not shown as bubbles of their own. They
 * never count as unread or mentions and are never a conversation-list entry's last message
 * (docs/protocol.md, "Events in the conversation list").
 */
export const LIFECYCLE_EVENT_KINDS: ReadonlySet<string> = new Set(['recall', 'edit', 'reaction']);
