/**
 * TypeScript shapes of the wire frames and request results, derived from the protocol's
 * zod schemas (type-only: nothing here adds runtime code).
 */
import type {
  ClientFrame,
  WelcomeResult as WelcomeSchema,
  SendResult as SendSchema,
  SyncResult as SyncSchema,
  HistoryResult as HistorySchema,
  ConvsResult as ConvsSchema,
  ReadResult as ReadSchema,
  PongFrame as PongSchema,
  MsgFrame as MsgSchema,
  ConvFrame as ConvSchema,
  DeliveredFrame as DeliveredSchema,
  DeliveredCountsFrame as DeliveredCountsSchema,
  KickedFrame as KickedSchema,
  ErrorFrame as ErrorSchema,
  ReplyFrame as ReplySchema,
} from '@magpie/protocol';

export type WelcomeResult = ReturnType<typeof WelcomeSchema.parse>;
export type SendResult = ReturnType<typeof SendSchema.parse>;
export type SyncResult = ReturnType<typeof SyncSchema.parse>;
export type HistoryResult = ReturnType<typeof HistorySchema.parse>;
export type ConvsResult = ReturnType<typeof ConvsSchema.parse>;
export type ReadResult = ReturnType<typeof ReadSchema.parse>;
export type PongFrame = ReturnType<typeof PongSchema.parse>;
export type MsgFrame = ReturnType<typeof MsgSchema.parse>;
export type ConvFrame = ReturnType<typeof ConvSchema.parse>;
export type DeliveredFrame = ReturnType<typeof DeliveredSchema.parse>;
export type DeliveredCountsFrame = ReturnType<typeof DeliveredCountsSchema.parse>;
export type KickedFrame = ReturnType<typeof KickedSchema.parse>;
export type ErrorFrame = ReturnType<typeof ErrorSchema.parse>;
export type ReplyFrame = ReturnType<typeof ReplySchema.parse>;

/** Any frame the server may send (unknown future types are passed through untyped). */
export type InboundFrame = PongFrame | MsgFrame | ConvFrame | DeliveredFrame | DeliveredCountsFrame | KickedFrame | ErrorFrame | ReplyFrame;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A client frame that expects a reply, without its id (the connection assigns it). */
export type RequestFrame = DistributiveOmit<Exclude<ClientFrame, { type: 'ack' }>, 'id'>;
export type RequestType = RequestFrame['type'];
/** Frames without a reply. */
export type NotifyFrame = Extract<ClientFrame, { type: 'ack' }> | DistributiveOmit<Extract<ClientFrame, { type: 'ping' }>, 'id'>;

/** The result type of each request. */
export interface RequestResults {
  hello: WelcomeResult;
  ping: PongFrame;
  send: SendResult;
  sync: SyncResult;
  history: HistoryResult;
  convs: ConvsResult;
  read: ReadResult;
  'conv.update': ReadResult;
  'instruction.result': { recorded: boolean };
  'receipts.query': { readSeq?: number | null; counts: [number, number, number][] };
  'receipts.members': { read: string[]; unread: string[] };
  typing: { sent: boolean };
  'presence.sub': { presence: { user: string; online: boolean | null; lastSeen: number | null }[] };
}
