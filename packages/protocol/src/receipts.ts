import { z } from 'zod';
import { OkSchema, restRoute } from './rest/route.ts';

/**
 * Read receipts, typing indicators, presence and per-group notification settings on the wire
 * (see docs/protocol.md, "Read receipts, typing and presence").
 */

const Id = z.number().int().nonnegative().max(2 ** 31);
const Seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const ConvId = z.string().min(1).max(128);
const UserId = z.string().min(1).max(64);

export const PRESENCE_PRIVACY = ['everyone', 'friends', 'nobody'] as const;
export const NOTIFY_LEVELS = ['all', 'mentions', 'none'] as const;
export type NotifyLevelName = (typeof NOTIFY_LEVELS)[number];

// --- client → server ---

/** Unread counts of many of the caller's messages at once (groups), or the peer's read position (1:1). */
export const ReceiptsQueryFrame = z.strictObject({ type: z.literal('receipts.query'), id: Id, conv: ConvId, seqs: z.array(Seq.min(1)).min(1).max(500) });

/** The read and unread member lists of one group message (the caller's own). */
export const ReceiptsMembersFrame = z.strictObject({ type: z.literal('receipts.members'), id: Id, conv: ConvId, seq: Seq.min(1) });

/** "I am typing in `conv`": ephemeral, never stored, rate-limited; `id` optional (no reply without it). */
export const TypingFrame = z.strictObject({ type: z.literal('typing'), id: Id.optional(), conv: ConvId });

/** Subscribe this connection to these users' presence (replaces the previous list). */
export const PresenceSubFrame = z.strictObject({ type: z.literal('presence.sub'), id: Id, users: z.array(UserId).max(500) });

export const receiptClientFrames = [ReceiptsQueryFrame, ReceiptsMembersFrame, TypingFrame, PresenceSubFrame] as const;

// --- server → client ---

/** 1:1: the peer `by` has read this user's messages in `conv` up to `seq`. */
export const ReadReceiptFrame = z.strictObject({ type: z.literal('read.receipt'), conv: z.string(), seq: Seq.min(1), by: z.string() });

/**
 * Groups: unread counts of this user's messages in `conv` changed. `counts` holds
 * `[seq, unread, total]`, ascending by seq; unread only falls.
 */
export const ReadCountsFrame = z.strictObject({
  type: z.literal('read.counts'),
  conv: z.string(),
  counts: z.array(z.tuple([Seq.min(1), Seq, Seq])).min(1),
});

/** `user` is typing in `conv`; show it until `expiresIn` ms from now unless another arrives. */
export const TypingEventFrame = z.strictObject({ type: z.literal('typing'), conv: z.string(), user: z.string(), expiresIn: z.number().int().positive() });

export const PresenceStateSchema = z.strictObject({
  user: z.string(),
  /** null: hidden by the user's privacy setting. */
  online: z.boolean().nullable(),
  lastSeen: z.number().int().nullable(),
});
export type PresenceState = z.infer<typeof PresenceStateSchema>;

/** A subscribed user went online or offline (debounced). */
export const PresenceFrame = z.strictObject({ type: z.literal('presence'), ...PresenceStateSchema.shape });

export const NotifySettingSchema = z.strictObject({ conv: z.string(), level: z.enum(NOTIFY_LEVELS), version: z.number().int().min(1) });
export type NotifySettingWire = z.infer<typeof NotifySettingSchema>;

/** This user's notification level for a group changed (on any of their devices). */
export const NotifySettingFrame = z.strictObject({ type: z.literal('notify.setting'), setting: NotifySettingSchema });

export const receiptServerFrames = [ReadReceiptFrame, ReadCountsFrame, TypingEventFrame, PresenceFrame, NotifySettingFrame] as const;

// --- replies ---

/** Result of `receipts.query`. Direct: `readSeq` of the peer (null when either side hides receipts). Groups: `[seq, unread, total]` of the tracked ones. */
export const ReceiptsQueryResult = z.strictObject({ readSeq: Seq.nullable().optional(), counts: z.array(z.tuple([Seq.min(1), Seq, Seq])) });
export const ReceiptsMembersResult = z.strictObject({ read: z.array(z.string()), unread: z.array(z.string()) });
export const PresenceSubResult = z.strictObject({ presence: z.array(PresenceStateSchema) });

// --- REST ---

export const PrivacySchema = z.strictObject({
  /** Send read receipts in 1:1 chats; off also hides everyone else's (reciprocity). */
  readReceipts: z.boolean(),
  presence: z.enum(PRESENCE_PRIVACY),
});
export type PrivacySettings = z.infer<typeof PrivacySchema>;

const Conv = z.strictObject({ conv: z.string().min(1).max(128) });

export const receiptRoutes = {
  privacy: restRoute({ method: 'GET', url: '/api/me/privacy', summary: 'Read-receipt and presence privacy', auth: 'user', reply: { 200: PrivacySchema } }),
  setPrivacy: restRoute({ method: 'PUT', url: '/api/me/privacy', summary: 'Change read-receipt and presence privacy', auth: 'user', body: PrivacySchema.partial(), reply: { 200: PrivacySchema } }),
  notifySettings: restRoute({
    method: 'GET',
    url: '/api/me/notify',
    summary: 'Per-group notification levels set by this user (others use the default)',
    auth: 'user',
    reply: { 200: z.strictObject({ settings: z.array(NotifySettingSchema), defaults: z.strictObject({ group: z.enum(NOTIFY_LEVELS), super: z.enum(NOTIFY_LEVELS) }) }) },
  }),
  setNotify: restRoute({
    method: 'PUT',
    url: '/api/groups/:conv/notify',
    summary: "Set this user's notification level for a group (all / mentions / none)",
    auth: 'user',
    params: Conv,
    body: z.strictObject({ level: z.enum(NOTIFY_LEVELS) }),
    reply: { 200: z.strictObject({ setting: NotifySettingSchema }) },
  }),
  groupReceipts: restRoute({
    method: 'PUT',
    url: '/api/groups/:conv/receipts',
    summary: "Turn read receipts of a group's messages on or off (owner/admin)",
    auth: 'user',
    params: Conv,
    body: z.strictObject({ enabled: z.boolean() }),
    reply: { 200: OkSchema },
  }),
};
