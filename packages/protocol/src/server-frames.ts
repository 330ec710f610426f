import { z } from 'zod';
import { errorCodeList } from './errors.ts';
import { RelationChangeSchema } from './social.ts';
import { receiptServerFrames } from './receipts.ts';
import { HiddenFrame } from './lifecycle.ts';
import { NotificationSchema } from './rest/notifications.ts';

/**
 * Server → client frames. The server may send either one frame object or a JSON array of
 * frames in one WebSocket message (it coalesces what is queued for a connection in a tick);
 * clients must accept both and process array elements in order.
 */

const Seq = z.number().int().nonnegative();

export const MessageSchema = z.strictObject({
  id: z.string(),
  conv: z.string(),
  seq: Seq.min(1),
  sender: z.string(),
  kind: z.string(),
  body: z.unknown(),
  time: z.number().int(),
  clientMsgId: z.string(),
  /**
   * Only in `sync` and `history` replies, only on the reader's own messages in group
   * conversations: how many other members' devices have stored it (see `delivered.counts`).
   */
  deliveredCount: Seq.optional(),
});

export const InboxItemSchema = z.strictObject({ inboxSeq: Seq.min(1), message: MessageSchema });

export const ConvEntrySchema = z.strictObject({
  conv: z.string(),
  kind: z.enum(['direct', 'group', 'super']),
  peer: z.string().nullable(),
  lastSeq: Seq,
  lastMessage: MessageSchema.nullable(),
  readSeq: Seq,
  unread: Seq,
  mentions: Seq,
  oldestUnreadSeq: Seq.nullable(),
  deliveredSeq: Seq,
  pinned: z.boolean(),
  muted: z.boolean(),
  draft: z.string(),
  deleted: z.boolean(),
  clearedSeq: Seq,
  version: Seq,
});

/** Reply to a request frame, matched by `id`. `result` depends on the request type (see docs/protocol.md). */
export const ReplyFrame = z.strictObject({ type: z.literal('reply'), id: z.number().int(), result: z.unknown() });

/** A typed error; `id` is present when the error answers a request. */
export const ErrorFrame = z.strictObject({
  type: z.literal('error'),
  id: z.number().int().optional(),
  code: z.enum(errorCodeList as [string, ...string[]]),
  message: z.string(),
  details: z.unknown().optional(),
  retryAfterMs: z.number().int().optional(),
});

export const PongFrame = z.strictObject({
  type: z.literal('pong'),
  id: z.number().int().optional(),
  /** The server's latest inboxSeq for this user: a client behind it pulls with `sync`. */
  inboxSeq: Seq,
  time: z.number().int(),
});

/** Live delivery of one inbox item. */
export const MsgFrame = z.strictObject({ type: z.literal('msg'), inboxSeq: Seq.min(1), message: MessageSchema });

/**
 * A super group advanced to `seq` (read diffusion: no inbox pointer). The message is
 * included, serialized once for every online member: merge it when it is your local
 * last seq + 1 for that conversation, otherwise pull `history` after your last seq.
 */
export const AdvancedFrame = z.strictObject({ type: z.literal('advanced'), conv: z.string(), seq: Seq.min(1), message: MessageSchema });

/** A conversation-list entry of this user changed (on another device, or by a new message). */
export const ConvFrame = z.strictObject({ type: z.literal('conv'), entry: ConvEntrySchema });

/** A recipient's device acknowledged this user's messages up to `seq` in `conv`. */
export const DeliveredFrame = z.strictObject({
  type: z.literal('delivered'),
  conv: z.string(),
  seq: Seq.min(1),
  by: z.string(),
});

/**
 * Group delivered counts of this user's messages in `conv` (normal groups): `counts` holds
 * `[seq, count]` pairs, ascending by seq, each the number of other members whose device has
 * stored that message. Counts only grow; keep the highest seen per message.
 */
export const DeliveredCountsFrame = z.strictObject({
  type: z.literal('delivered.counts'),
  conv: z.string(),
  counts: z.array(z.tuple([Seq.min(1), Seq.min(1)])).min(1),
});

/**
 * A command for this device to execute (force full sync, upload diagnostics, clear local
 * cache, set a configuration value); the client answers with `instruction.result`.
 * Pending instructions also arrive in the `hello` reply, before any sync.
 */
export const INSTRUCTION_KINDS = ['force_full_sync', 'upload_diagnostics', 'clear_cache', 'set_config'] as const;
export const InstructionFrame = z.strictObject({
  type: z.literal('instruction'),
  instructionId: z.string(),
  kind: z.enum(INSTRUCTION_KINDS),
  payload: z.unknown(),
  createdAt: z.number().int(),
});
export type InstructionFrame = z.infer<typeof InstructionFrame>;

/** Sent just before a close with code 4101 or 4102. */
export const KickedFrame = z.strictObject({
  type: z.literal('kicked'),
  reason: z.enum(['new_login', 'logout', 'logout_all', 'admin']),
  message: z.string(),
});

/** A relation of this user changed (friends, requests, blocks); `version` equals `change.version`. Sent to all the user's devices. */
export const RelationFrame = z.strictObject({ type: z.literal('relation'), version: z.number().int().min(1), change: RelationChangeSchema });

/**
 * A join request in a group this user owns or administers was filed (`filed`) or handled
 * (`approved`, `rejected`, by `by`). Sent to all devices of the group's owner and admins; re-read
 * `GET /api/groups/:conv/requests` for the list. Not replayed: refresh the list on reconnect.
 */
export const JoinRequestFrame = z.strictObject({
  type: z.literal('join_request'),
  conv: z.string(),
  userId: z.string(),
  event: z.enum(['filed', 'approved', 'rejected']),
  inviter: z.string().nullable(),
  by: z.string().nullable(),
});

/**
 * Someone opened a red packet this user sent (to the sender's devices only; live, not
 * replayed: `GET /api/redpackets/:id` has every claim). `remainingCount` 0: all claimed.
 */
export const RedPacketClaimedFrame = z.strictObject({
  type: z.literal('redpacket.claimed'),
  packetId: z.string(),
  conv: z.string(),
  user: z.string(),
  amount: Seq.min(1),
  remainingCount: Seq,
});
export type RedPacketClaimedFrame = z.infer<typeof RedPacketClaimedFrame>;

/**
 * A service account's notification for this user (live; never an inbox item). Merge it when its
 * `slot` is your ring position + 1 (list, segment) or its `feedSeq` is your feed position of that
 * service + 1 (audience all); otherwise pull `GET /api/notifications` from your cursor.
 */
export const NotificationFrame = z.strictObject({ type: z.literal('notification'), notification: NotificationSchema });

export const ServerFrame = z.discriminatedUnion('type', [
  ReplyFrame,
  ErrorFrame,
  PongFrame,
  MsgFrame,
  AdvancedFrame,
  ConvFrame,
  DeliveredFrame,
  DeliveredCountsFrame,
  InstructionFrame,
  KickedFrame,
  RelationFrame,
  JoinRequestFrame,
  ...receiptServerFrames,
  RedPacketClaimedFrame,
  HiddenFrame,
  NotificationFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export const serverFrameTypes = ServerFrame.options.map((o) => o.shape.type.value);

/** Result of `hello`. */
export const WelcomeResult = z.strictObject({
  version: z.number().int(),
  userId: z.string(),
  deviceId: z.string(),
  /** The server's latest inboxSeq for this user. */
  inboxSeq: Seq,
  /** Lowest inboxSeq still held in the ring; older items are gone. */
  ringStart: Seq,
  /**
   * What the client must do next: `none` (up to date), `incremental` (pull `sync` pages
   * from its inboxSeq) or `full` (reload the conversation list with `convs` since 0 and
   * page history on demand; then continue from the returned inboxSeq).
   */
  sync: z.enum(['none', 'incremental', 'full']),
  heartbeatMs: z.number().int(),
  /** The user's super groups and their last seq: sync these by conversation seq (`history` after your last). */
  supers: z.array(z.strictObject({ conv: z.string(), lastSeq: Seq })),
  /** Instructions pending for this device: execute them before showing history, then report each with `instruction.result`. */
  instructions: z.array(InstructionFrame),
  serverTime: z.number().int(),
  limits: z.strictObject({ maxFrameBytes: z.number().int(), maxMessageBytes: z.number().int() }),
});

/** Result of `send`: the stored message and the sender's own inbox position for it. */
export const SendResult = z.strictObject({ message: MessageSchema, inboxSeq: Seq.min(1), duplicate: z.boolean() });

/** Result of `sync`: a page of the inbox after `since`, or `full: true` when the gap is too long. */
export const SyncResult = z.strictObject({
  items: z.array(InboxItemSchema),
  inboxSeq: Seq,
  more: z.boolean(),
  full: z.boolean(),
});

/**
 * Result of `history`. `purgedSeq`: every message with seq ≤ purgedSeq was deleted by the
 * retention purge (0 when none was): a page that starts above it has no gap before it.
 * (Optional in the schema only so clients accept servers older than retention.)
 */
export const HistoryResult = z.strictObject({ messages: z.array(MessageSchema), lastSeq: Seq, more: z.boolean(), purgedSeq: Seq.optional() });

export const ConvsResult = z.strictObject({ version: Seq, entries: z.array(ConvEntrySchema), more: z.boolean() });

export const ReadResult = z.strictObject({ entry: ConvEntrySchema });
