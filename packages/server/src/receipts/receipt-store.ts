/** Durable state of read receipts, presence privacy and notification settings (see migration 0009). */

export type PresencePrivacy = 'everyone' | 'friends' | 'nobody';
export type NotifyLevel = 'all' | 'mentions' | 'none';

export interface Privacy {
  /** Sends (and therefore sees) 1:1 read receipts. */
  readReceipts: boolean;
  presence: PresencePrivacy;
}

export interface Snapshot {
  conv: string;
  epoch: number;
  /** Member ids in bitmap order. */
  members: string[];
}

export interface TrackedMessage {
  conv: string;
  seq: number;
  sender: string;
  epoch: number;
}

export interface NewTracked extends TrackedMessage {
  bitmap: Buffer;
  readCount: number;
}

export interface ReceiptCount {
  conv: string;
  seq: number;
  sender: string;
  /** Members of the snapshot other than the sender. */
  total: number;
  /** Of those, how many have read it. */
  read: number;
}

/** Bits to set: members (by snapshot index) who read message `seq` of `conv`. */
export interface ReadMark {
  conv: string;
  seq: number;
  indices: number[];
}

export interface NotifySetting {
  conv: string;
  level: NotifyLevel;
  version: number;
}

export interface ReceiptStore {
  /** The newest snapshot of `conv`, or null. */
  latestSnapshot(conv: string): Promise<Snapshot | null>;
  snapshot(conv: string, epoch: number): Promise<Snapshot | null>;
  /** Store a snapshot (a no-op when one exists for that epoch). */
  putSnapshot(s: Snapshot, now: number): Promise<void>;
  /** Start tracking these messages (already tracked ones are left alone). */
  track(rows: NewTracked[]): Promise<void>;
  /** Tracked messages of `conv` with after < seq ≤ upTo, ascending, at most `limit`. */
  trackedBetween(conv: string, after: number, upTo: number, limit: number): Promise<TrackedMessage[]>;
  /** Tracked messages of `conv` among `seqs`. */
  trackedAmong(conv: string, seqs: number[]): Promise<TrackedMessage[]>;
  /**
   * Set read bits, batched: one conditional update per message (optimistic, retried on a
   * concurrent writer; no lock is held across nodes). Returns the counts of the messages that changed.
   */
  setRead(marks: ReadMark[]): Promise<ReceiptCount[]>;
  counts(conv: string, seqs: number[]): Promise<ReceiptCount[]>;
  /** The bitmap of one message with its snapshot, or null when it is not tracked. */
  bitmapOf(conv: string, seq: number): Promise<{ sender: string; bitmap: Buffer; snapshot: Snapshot } | null>;
  /** Record the reader's report "read up to seq"; resolves with the seq reported before (0 if none). Never lowers it. */
  report(userId: string, conv: string, seq: number): Promise<number>;
  /** `report` for many readers in one transaction (one commit for a burst); the seqs reported before, in order. */
  reportMany(reports: { userId: string; conv: string; seq: number }[]): Promise<number[]>;

  privacy(userIds: string[]): Promise<Map<string, Privacy>>;
  setPrivacy(userId: string, p: Privacy, now: number): Promise<void>;
  groupReceipts(conv: string): Promise<boolean | null>;
  setGroupReceipts(conv: string, enabled: boolean, now: number): Promise<void>;

  notifySettings(userId: string): Promise<NotifySetting[]>;
  /** Set a user's level for `conv`; resolves with the setting (its version is the user's next). */
  setNotify(userId: string, conv: string, level: NotifyLevel): Promise<NotifySetting>;
  /** Levels of these users in `conv` (absent = default). */
  notifyLevels(conv: string, userIds: string[]): Promise<Map<string, NotifyLevel>>;
  /** Users of `conv` whose level is `level` (index range, not a member scan). */
  usersWithLevel(conv: string, level: NotifyLevel, after: string, limit: number): Promise<string[]>;

  lastSeen(userIds: string[]): Promise<Map<string, number>>;
  setLastSeen(userId: string, at: number): Promise<void>;
  close(): Promise<void>;
}
