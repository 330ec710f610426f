// Framework-neutral view models: bind with subscribe(listener) / getSnapshot().
export { ViewModel, errorText } from './view-model.ts';
export { Directory, type DirectoryState, type DirectoryCache, type DirectoryDeps, type GroupSummary } from './directory.ts';
export { ConnectionViewModel, type ConnectionState, type ConnectionStatus } from './connection.ts';
export { ConversationListViewModel, type ConversationListState, type ConversationRow, type ConversationListDeps, type MessageHit } from './conversation-list.ts';
export { ChatViewModel, formatBytes, type ChatState, type ChatItem, type ChatUploadItem, type ChatDeps, type ChatTarget, type DraftStore, type MediaFileInput } from './chat.ts';
export { durationText, sendBlockText, failureText, retryableCode, matchMembers, displayName, fold, textBodyBytes, type SendRights } from './compose.ts';
export { ContactsViewModel, type ContactsState, type ContactsDeps, type SearchRow } from './contacts.ts';
export { GroupViewModel, type GroupState, type GroupDeps, type MemberRow } from './group.ts';
export { messageText, messageStatusText, systemNoticeText, registerKindText, dayKey, dayLabel, shortTime, directConvId, findMentions, type NameOf } from './format.ts';
export { JoinRequestsViewModel, type JoinRequestsState, type JoinRequestsDeps } from './join-requests.ts';
