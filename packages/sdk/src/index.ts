// Public API of @magpie/sdk.
export {
  MagpieClient,
  wsUrlOf,
  type MagpieClientOptions,
  type MagpieClientEvents,
  type ClientState,
  type StateEvent,
  type ConnectionInfo,
  type OfflineReason,
  type ConversationEvent,
  type DeliveredEvent,
  type DeliveredCountsEvent,
  type KickedEvent,
  type SendInput,
  type ConversationPatch,
} from './client.ts';
export { MagpieClientError, type MagpieClientErrorCode, type ClientErrorCode } from './errors.ts';
export { MemoryStore, type LocalStore, type StoreMeta, type OutgoingRecord, type OutgoingState } from './local-store.ts';
export type { LocalMessage, MessageState, MessageWindow, HistoryQuery } from './history.ts';
export type { SeqRange } from './seq-ranges.ts';
export { addRange, addRanges, removeUpTo, covers, missing, rangeContaining, maxCovered } from './seq-ranges.ts';
export { RestApi, type FetchLike, type RestOptions, type RegisterInput, type LoginInput, type LoginResult } from './rest.ts';
export { systemClock, type Clock, type TimerHandle } from './clock.ts';
export type { WebSocketLike, WebSocketFactory } from './transport/websocket.ts';
export { defaultHeartbeatOptions, type HeartbeatOptions, type AppState } from './heartbeat.ts';
export { defaultReconnectOptions, ReconnectPolicy, type ReconnectOptions, type ReconnectContext } from './reconnect.ts';
export { defaultSyncEngineOptions, type SyncEngineOptions, type SyncProgress, type SyncPhase } from './sync-engine.ts';
export { defaultSendQueueOptions, type SendQueueOptions, type SendTarget } from './send-queue.ts';
export { ConnectTelemetry, defaultTelemetryOptions, telemetryVersion, type ConnectTelemetryOptions, type ConnectAttempt, type ConnectFailure } from './telemetry.ts';
export { TypedEmitter, type Listener } from './emitter.ts';
export type { WelcomeResult, SendResult, SyncResult, HistoryResult, ConvsResult } from './wire.ts';
export type { ConvEntry, Message, InboxItem, Platform } from '@magpie/protocol';
export { mapUrl, formatDuration, messagePreview, isMediaKind, type ClientConfig, type MediaKind, type ImageBody, type VideoBody, type VoiceBody, type FileBody, type LocationBody, type CardBody, type MediaVariant } from '@magpie/protocol';
export {
  SocialApi,
  RelationSync,
  parseRelationFrame,
  isRelationChange,
  RELATION_STATE_VALUES,
  RELATION_CHANGE_KIND_VALUES,
  type RelationFrame,
  type RelationSyncEvents,
  type RelationSyncOptions,
  type StateSource,
  type ProfilePatch,
  type ListPage,
  type PageQuery,
} from './social.ts';
export type { Profile, ProfileSummary, FriendEntry, FriendRequestEntry, BlockEntry, RelationChange, RelationChangeKind, RelationChangesResult, RelationResult, RelationState, SearchResult } from './social.ts';
export { executeInstruction, type Instruction, type InstructionHost } from './instructions.ts';
export { GroupsApi, type GroupInfo, type GroupMember, type GroupRole, type GroupJoinRequest, type GroupPatch, type CreateGroupInput, type JoinPolicy } from './groups.ts';
export * from './view-models/index.ts';
export { MediaApi, MediaUpload, type MediaApiOptions, type UploadInfo, type UploadSource, type UploadState, type UploadEvents, type PendingMedia, type PendingMediaState, type SendMediaInput } from './media.ts';
export { Receipts, type ReceiptState, type ReceiptsEvents, type ReceiptsTransport, type PresenceState, type PrivacySettings, type NotifyLevelName, type NotifySettingWire } from './receipts.ts';
export {
  WalletApi,
  WalletError,
  RedPacketWatch,
  walletRefusalOf,
  type WalletRefusal,
  type SendRedPacketInput,
  type OpenedPacket,
  type PacketDetails,
  type StatementPage,
  type PaymentResult,
  type RedPacketEvents,
  type RedPacketSource,
} from './wallet.ts';
export type { LedgerEntry, PaymentRequestView, PinStatus, RedPacketBody, RedPacketClaim, RedPacketStatusBody, RedPacketView } from './wallet.ts';
export { parseYuan, formatYuan } from './money.ts';
export {
  LifecycleApi,
  LifecycleSync,
  ReactionBook,
  applyEvent,
  LIFECYCLE_EVENT_KINDS,
  LOCAL_HIDDEN_KIND,
  type ForwardInput,
  type LifecycleSyncEvents,
  type LifecycleSource,
  type HiddenChange,
  type ReactionChange,
  type ReactionSummary,
} from './lifecycle.ts';
export { SearchApi, isSubjectConversation, type SearchFilters, type MessageSearchHit, type MessageSearchResult, type Subject } from './search.ts';
export { NotificationsApi, NotificationInbox, type UserService, type NotificationPage, type NotificationInboxEvents, type NotificationSource, type Notification, type ServiceAccount } from './notifications.ts';
