import { z } from 'zod';
import { PLATFORMS, CAPABILITIES } from './types.ts';
import { receiptClientFrames } from './receipts.ts';

/** Protocol versions this package speaks. */
export const PROTOCOL_VERSIONS = [1] as const;

const Id = z.number().int().nonnegative().max(2 ** 31);
const Seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const ConvId = z.string().min(1).max(128);
const UserId = z.string().min(1).max(64);

/** Client → server frames. Every frame except `ack` and `ping` carries a request `id`. */
export const HelloFrame = z.strictObject({
  type: z.literal('hello'),
  id: Id,
  versions: z.array(z.number().int()).min(1).max(8),
  token: z.string().min(1).max(512),
  inboxSeq: Seq,
  app: z
    .strictObject({
      version: z.string().max(32).optional(),
      platform: z.enum(PLATFORMS).optional(),
    })
    .optional(),
  caps: z.array(z.enum(CAPABILITIES)).max(16).optional(),
});

export const PingFrame = z.strictObject({
  type: z.literal('ping'),
  id: Id.optional(),
  /** The client's current heartbeat interval in ms; the server closes after 2 silent intervals. */
  interval: z.number().int().min(1000).max(600_000).optional(),
});

export const SendFrame = z
  .strictObject({
    type: z.literal('send'),
    id: Id,
    clientMsgId: z.string().min(1).max(64),
    /** Target: exactly one of `to` (a user, for a direct chat) or `conv`. */
    to: UserId.optional(),
    conv: ConvId.optional(),
    kind: z.string().min(1).max(32),
    body: z.unknown(),
    /** Group messages: user ids mentioned, or 'all' (@all); counted apart in the mentioned users' entries. */
    mentions: z.union([z.array(UserId).min(1).max(100), z.literal('all')]).optional(),
    /** Group messages: ask for read receipts (true) or not (false); absent: the group's / system's setting. */
    receipt: z.boolean().optional(),
    /** Group messages: the seq of the message this one replies to (its sender may get a push). */
    replyTo: Seq.min(1).optional(),
  })
  .refine((f) => (f.to === undefined) !== (f.conv === undefined), { message: 'exactly one of `to` and `conv` is required' });

export const AckFrame = z.strictObject({
  type: z.literal('ack'),
  /** Cumulative: the device has stored every inbox item up to this inboxSeq. */
  inboxSeq: Seq,
});

export const SyncFrame = z.strictObject({
  type: z.literal('sync'),
  id: Id,
  since: Seq,
  limit: z.number().int().min(1).max(1000).optional(),
  /**
   * InboxSeqs above `since` the client already holds (received live, waiting behind a gap).
   * Only for the server's delivery metrics: those arrived live, not by this pull.
   */
  have: z.array(Seq).max(1000).optional(),
});

export const HistoryFrame = z.strictObject({
  type: z.literal('history'),
  id: Id,
  conv: ConvId,
  /** Newest first, below this seq (exclusive). Default: from the newest. */
  before: Seq.optional(),
  /** Oldest first, above this seq (exclusive); use oldestUnreadSeq - 1 to jump to the first unread. */
  after: Seq.optional(),
  limit: z.number().int().min(1).max(200).optional(),
});

export const ConvsFrame = z.strictObject({
  type: z.literal('convs'),
  id: Id,
  /** Conversation-list version the client holds; 0 for everything. */
  since: Seq,
  limit: z.number().int().min(1).max(500).optional(),
});

export const ReadFrame = z.strictObject({
  type: z.literal('read'),
  id: Id,
  conv: ConvId,
  seq: Seq,
});

export const ConvUpdateFrame = z.strictObject({
  type: z.literal('conv.update'),
  id: Id,
  conv: ConvId,
  pinned: z.boolean().optional(),
  muted: z.boolean().optional(),
  draft: z.string().max(4000).optional(),
  /** Delete for oneself: hides the entry and the history up to now. */
  deleted: z.literal(true).optional(),
});

export const InstructionResultFrame = z.strictObject({
  type: z.literal('instruction.result'),
  id: Id,
  instructionId: z.string().min(1).max(64),
  ok: z.boolean(),
  /** What the device did or found (diagnostics go here); at most the frame size. */
  result: z.json().optional(),
});

export const ClientFrame = z.discriminatedUnion('type', [
  HelloFrame,
  PingFrame,
  SendFrame,
  AckFrame,
  SyncFrame,
  HistoryFrame,
  ConvsFrame,
  ReadFrame,
  ConvUpdateFrame,
  InstructionResultFrame,
  ...receiptClientFrames,
]);

export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['type'];
export const clientFrameTypes = ClientFrame.options.map((o) => o.shape.type.value) as ClientFrameType[];
export type HelloFrame = z.infer<typeof HelloFrame>;
export type SendFrame = z.infer<typeof SendFrame>;

export interface SyncLimits {
  maxFrameBytes: number;
  maxMessageBytes: number;
}
