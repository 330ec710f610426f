/**
 * An IndexedDB LocalStore: the conversation list, message history with its coverage
 * (seq ranges held completely), delivered positions, the outgoing queue and the inbox
 * position survive a reload, so the list shows at once and the client syncs
 * incrementally from the stored inboxSeq.
 */
import { addRanges, removeUpTo, type ConvEntry, type LocalStore, type Message, type OutgoingRecord, type SeqRange, type StoreMeta } from '@magpie/sdk';

const VERSION = 1;
const META_KEY = 'meta';

interface ConvState {
  conv: string;
  ranges: SeqRange[];
  cleared: number;
  delivered: number;
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export function openDatabase(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name, VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore('meta');
      db.createObjectStore('entries', { keyPath: 'conv' });
      db.createObjectStore('messages', { keyPath: ['conv', 'seq'] });
      db.createObjectStore('convs', { keyPath: 'conv' });
      db.createObjectStore('outgoing', { keyPath: 'clientMsgId' });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
    open.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

const emptyMeta = (deviceId: string | null): StoreMeta => ({ userId: null, deviceId, inboxSeq: 0, convVersion: 0 });

export class IndexedDbStore implements LocalStore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(name = 'magpie'): Promise<IndexedDbStore> {
    return new IndexedDbStore(await openDatabase(name));
  }

  close(): void {
    this.db.close();
  }

  private tx(stores: string[], mode: IDBTransactionMode = 'readonly'): IDBTransaction {
    return this.db.transaction(stores, mode);
  }

  async loadMeta(): Promise<StoreMeta> {
    const m = await req(this.tx(['meta']).objectStore('meta').get(META_KEY));
    return { ...emptyMeta(null), ...(m as StoreMeta | undefined) };
  }

  async saveMeta(patch: Partial<StoreMeta>): Promise<void> {
    const tx = this.tx(['meta'], 'readwrite');
    const s = tx.objectStore('meta');
    const cur = ((await req(s.get(META_KEY))) as StoreMeta | undefined) ?? emptyMeta(null);
    s.put({ ...cur, ...patch }, META_KEY);
    await done(tx);
  }

  async clear(): Promise<void> {
    const deviceId = (await this.loadMeta()).deviceId;
    const tx = this.tx(['meta', 'entries', 'messages', 'convs', 'outgoing'], 'readwrite');
    for (const n of ['entries', 'messages', 'convs', 'outgoing']) tx.objectStore(n).clear();
    tx.objectStore('meta').put(emptyMeta(deviceId), META_KEY);
    await done(tx);
  }

  async listEntries(): Promise<ConvEntry[]> {
    return (await req(this.tx(['entries']).objectStore('entries').getAll())) as ConvEntry[];
  }

  async getEntry(conv: string): Promise<ConvEntry | undefined> {
    return (await req(this.tx(['entries']).objectStore('entries').get(conv))) as ConvEntry | undefined;
  }

  async putEntries(entries: ConvEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const tx = this.tx(['entries'], 'readwrite');
    const s = tx.objectStore('entries');
    for (const e of entries) s.put(e);
    await done(tx);
  }

  async replaceEntries(entries: ConvEntry[]): Promise<void> {
    const tx = this.tx(['entries'], 'readwrite');
    const s = tx.objectStore('entries');
    s.clear();
    for (const e of entries) s.put(e);
    await done(tx);
  }

  private async state(s: IDBObjectStore, conv: string): Promise<ConvState> {
    return ((await req(s.get(conv))) as ConvState | undefined) ?? { conv, ranges: [], cleared: 0, delivered: 0 };
  }

  async putMessages(conv: string, messages: Message[], covered: SeqRange[]): Promise<void> {
    const tx = this.tx(['messages', 'convs'], 'readwrite');
    const convs = tx.objectStore('convs');
    const st = await this.state(convs, conv);
    const ms = tx.objectStore('messages');
    for (const m of messages) if (m.conv === conv && m.seq > st.cleared) ms.put(m);
    st.ranges = removeUpTo(addRanges(st.ranges, covered), st.cleared);
    convs.put(st);
    await done(tx);
  }

  async getMessages(conv: string, from: number, to: number): Promise<Message[]> {
    if (to < from) return [];
    const range = IDBKeyRange.bound([conv, from], [conv, to]);
    return (await req(this.tx(['messages']).objectStore('messages').getAll(range))) as Message[];
  }

  async getRanges(conv: string): Promise<SeqRange[]> {
    return (await this.state(this.tx(['convs']).objectStore('convs'), conv)).ranges;
  }

  async clearHistoryUpTo(conv: string, seq: number): Promise<void> {
    const tx = this.tx(['messages', 'convs'], 'readwrite');
    const convs = tx.objectStore('convs');
    const st = await this.state(convs, conv);
    if (seq <= st.cleared) {
      await done(tx);
      return;
    }
    st.cleared = seq;
    st.ranges = removeUpTo(st.ranges, seq);
    tx.objectStore('messages').delete(IDBKeyRange.bound([conv, 0], [conv, seq]));
    convs.put(st);
    await done(tx);
  }

  async getClearedSeq(conv: string): Promise<number> {
    return (await this.state(this.tx(['convs']).objectStore('convs'), conv)).cleared;
  }

  async getDeliveredSeq(conv: string): Promise<number> {
    return (await this.state(this.tx(['convs']).objectStore('convs'), conv)).delivered;
  }

  async setDeliveredSeq(conv: string, seq: number): Promise<void> {
    const tx = this.tx(['convs'], 'readwrite');
    const s = tx.objectStore('convs');
    const st = await this.state(s, conv);
    st.delivered = seq;
    s.put(st);
    await done(tx);
  }

  async listOutgoing(): Promise<OutgoingRecord[]> {
    return (await req(this.tx(['outgoing']).objectStore('outgoing').getAll())) as OutgoingRecord[];
  }

  async putOutgoing(record: OutgoingRecord): Promise<void> {
    const tx = this.tx(['outgoing'], 'readwrite');
    tx.objectStore('outgoing').put(record);
    await done(tx);
  }

  async deleteOutgoing(clientMsgId: string): Promise<void> {
    const tx = this.tx(['outgoing'], 'readwrite');
    tx.objectStore('outgoing').delete(clientMsgId);
    await done(tx);
  }
}
