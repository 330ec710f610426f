/**
 * The signed-in session: one MagpieClient over the IndexedDB store, and the SDK's view
 * models the screens bind to. The token is kept in a small IndexedDB database that the
 * service worker reads too (to check whose push was clicked).
 */
import {
  Receipts,
  ConnectionViewModel,
  ContactsViewModel,
  ConversationListViewModel,
  Directory,
  GroupsApi,
  JoinRequestsViewModel,
  MagpieClient,
  MagpieClientError,
  MediaApi,
  MemoryStore,
  RestApi,
  SocialApi,
  WalletApi,
  RedPacketWatch,
  LifecycleApi,
  LifecycleSync,
  type LifecycleSource,
  SearchApi,
  NotificationsApi,
  NotificationInbox,
  type NotificationSource,
  type DirectoryState,
  type DraftStore,
  type LocalStore,
} from '@magpie/sdk';
import type { ClientConfig } from '@magpie/sdk';
import { IndexedDbStore } from './idb-store.ts';
import { t } from './i18n/index.ts';
import { TabSync, claimStore } from './tabs.ts';
import { bootMark } from './boot.ts';

export const APP_VERSION = '0.1.0';

export interface SavedSession {
  token: string;
  userId: string;
  username: string;
}

// ---------------------------------------------------------------- token storage (shared with sw.js)

const KV_DB = 'magpie-session';

function kv(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(KV_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

export async function loadSession(): Promise<SavedSession | null> {
  const db = await kv();
  try {
    return await new Promise((resolve, reject) => {
      const r = db.transaction('kv').objectStore('kv').get('session');
      r.onsuccess = () => resolve((r.result as SavedSession | undefined) ?? null);
      r.onerror = () => reject(r.error);
    });
  } finally {
    db.close();
  }
}

async function saveSession(s: SavedSession | null): Promise<void> {
  const db = await kv();
  try {
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction('kv', 'readwrite');
      if (s) tx.objectStore('kv').put(s, 'session');
      else tx.objectStore('kv').delete('session');
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const directoryCache = (userId: string) => ({
  load(): DirectoryState | null {
    try {
      const raw = localStorage.getItem(`magpie.directory.${userId}`);
      return raw ? (JSON.parse(raw) as DirectoryState) : null;
    } catch {
      return null;
    }
  },
  save(state: DirectoryState): void {
    try {
      localStorage.setItem(`magpie.directory.${userId}`, JSON.stringify(state));
    } catch {
      /* storage full: names are fetched again */
    }
  },
});

/** Drafts on this device (localStorage), so a draft typed offline survives a reload. */
const draftStore = (userId: string): DraftStore => ({
  load(key) {
    try {
      const raw = localStorage.getItem(`magpie.draft.${userId}.${key}`);
      return raw ? (JSON.parse(raw) as { text: string; synced: boolean }) : null;
    } catch {
      return null;
    }
  },
  save(key, draft) {
    try {
      if (draft) localStorage.setItem(`magpie.draft.${userId}.${key}`, JSON.stringify(draft));
      else localStorage.removeItem(`magpie.draft.${userId}.${key}`);
    } catch {
      /* storage full: the server keeps it when connected */
    }
  },
});

/**
 * The store of this tab: the leading tab (see tabs.ts) opens IndexedDB; a follower keeps
 * its data in memory, starting from the device id the leader stored and a copy of the
 * conversation list (so a follower opened offline, or a reload whose old page held the lock
 * too long, still shows the list at once; the first sync brings each entry up to date).
 */
async function openStore(): Promise<{ store: LocalStore; idb: IndexedDbStore | null; release(): void }> {
  const claim = await claimStore();
  bootMark('store-claimed', { leader: claim.leader });
  const idb = await IndexedDbStore.open();
  bootMark('idb-open');
  if (claim.leader) return { store: idb, idb, release: claim.release };
  const meta = await idb.loadMeta();
  const entries = await idb.listEntries().catch(() => []);
  idb.close();
  const mem = new MemoryStore();
  await mem.saveMeta({ userId: meta.userId, deviceId: meta.deviceId });
  await mem.putEntries(entries);
  return { store: mem, idb: null, release: claim.release };
}

// ---------------------------------------------------------------- session

export class Session {
  readonly rest: RestApi;
  readonly social: SocialApi;
  /** Read receipts, typing, presence, notification levels (fed by the client's `frame` events). */
  readonly receipts: Receipts;
  /** Reply, forward, recall, edit, delete-for-me, reactions (REST + the local store following the events). */
  readonly lifecycle: { api: LifecycleApi; sync: LifecycleSync };
  readonly groups: GroupsApi;
  /** Wallet, payment PIN and red packets; `redPackets` follows live red-packet events. */
  readonly wallet: WalletApi;
  readonly redPackets: RedPacketWatch;
  /** Server-side message search and conversation subjects. */
  readonly search: SearchApi;
  /** Service accounts' notifications (their own inbox, apart from chat), kept in step by `inbox`. */
  readonly notifications: { api: NotificationsApi; inbox: NotificationInbox };
  readonly directory: Directory;
  readonly connection: ConnectionViewModel;
  readonly conversations: ConversationListViewModel;
  readonly contacts: ContactsViewModel;
  readonly joinRequests: JoinRequestsViewModel;
  readonly drafts: DraftStore;
  /** Uploads (tus, resumable; a network loss pauses them until the reconnect) and signed media URLs. */
  readonly media: MediaApi;
  private config: Promise<ClientConfig> | null = null;
  private readonly tabs: TabSync;
  private readonly offNetwork: () => void;

  private constructor(
    readonly client: MagpieClient,
    readonly store: LocalStore,
    readonly saved: SavedSession,
    /** This tab keeps the IndexedDB store (the other tabs of the browser follow it). */
    readonly leader: boolean,
    private readonly releaseStore: () => void,
  ) {
    const baseUrl = location.origin;
    this.rest = new RestApi({ baseUrl });
    this.social = new SocialApi(this.rest, () => saved.token);
    this.receipts = new Receipts({ request: (f) => client.request(f) }, { api: this.rest, token: () => saved.token });
    client.on('frame', (f) => void this.receipts.handleFrame(f));
    client.on('message', (m) => {
      if (!m.own && m.conv) this.receipts.typingStopped(m.conv, m.sender);
    });
    const lifecycleApi = new LifecycleApi(this.rest, () => saved.token);
    const lifecycleSync = new LifecycleSync(lifecycleApi, store, { onListenerError: (err) => console.warn('[magpie] lifecycle listener failed', err) });
    lifecycleSync.attach(client as unknown as LifecycleSource);
    this.lifecycle = { api: lifecycleApi, sync: lifecycleSync };
    this.groups = new GroupsApi(this.rest, () => saved.token);
    this.wallet = new WalletApi(this.rest, () => saved.token);
    this.redPackets = new RedPacketWatch(this.wallet, client);
    this.search = new SearchApi(this.rest, () => saved.token);
    const notificationsApi = new NotificationsApi(this.rest, () => saved.token);
    const inbox = new NotificationInbox(notificationsApi, { onListenerError: (err) => console.warn('[magpie] notifications listener failed', err) });
    inbox.attach(client as unknown as NotificationSource);
    this.notifications = { api: notificationsApi, inbox };
    this.directory = new Directory({ social: this.social, groups: this.groups, cache: directoryCache(saved.userId) });
    this.connection = new ConnectionViewModel(client, navigator.onLine);
    this.conversations = new ConversationListViewModel({ client, directory: this.directory, search: this.search });
    this.contacts = new ContactsViewModel({ client, social: this.social, directory: this.directory });
    this.joinRequests = new JoinRequestsViewModel({ client, groups: this.groups });
    this.drafts = draftStore(saved.userId);
    this.media = new MediaApi({
      baseUrl,
      token: () => saved.token,
      send: (input) => client.send(input),
      waitForSend: (id) => client.waitForSend(id),
      // 4 MiB requests: progress moves and a lost connection re-sends at most one chunk.
      chunkSize: 4 * 1024 * 1024,
      retryDelays: [0, 1000, 3000],
      keepOnNetworkError: true,
    });
    this.tabs = new TabSync(client, saved.userId);
    const online = () => this.connection.setNetworkOnline(true);
    const offline = () => this.connection.setNetworkOnline(false);
    // Names learnt from the server are what an offline start shows: written before the page
    // goes (the directory's debounced save would be lost by a reload), and names that failed
    // to load while offline are asked again as soon as the connection is back.
    const keepNames = () => this.directory.flush();
    const visibility = () => {
      client.setAppState(document.visibilityState === 'visible' ? 'foreground' : 'background');
      if (document.visibilityState === 'hidden') keepNames();
    };
    const offState = client.on('state', ({ state }) => {
      if (state === 'online') this.directory.retryFailed();
    });
    addEventListener('online', online);
    addEventListener('offline', offline);
    addEventListener('pagehide', keepNames);
    document.addEventListener('visibilitychange', visibility);
    this.offNetwork = () => {
      offState();
      removeEventListener('online', online);
      removeEventListener('offline', offline);
      removeEventListener('pagehide', keepNames);
      document.removeEventListener('visibilitychange', visibility);
    };
  }

  get userId(): string {
    return this.saved.userId;
  }

  /** The server's media settings (upload limits, map link template): GET /api/client-config, once per session. */
  clientConfig(): Promise<ClientConfig> {
    this.config ??= (async () => {
      const r = await fetch('/api/client-config', { headers: { authorization: `Bearer ${this.saved.token}` } });
      if (!r.ok) throw new Error(`client-config: HTTP ${r.status}`);
      return (await r.json()) as ClientConfig;
    })();
    this.config.catch(() => (this.config = null));
    return this.config;
  }

  private static newClient(store: LocalStore, token?: string): MagpieClient {
    return new MagpieClient({
      baseUrl: location.origin,
      store,
      app: { platform: 'web', version: APP_VERSION },
      ...(token ? { token } : {}),
      networkOnline: navigator.onLine,
      appState: document.visibilityState === 'visible' ? 'foreground' : 'background',
      onListenerError: (err) => console.warn('[magpie] listener failed', err),
    });
  }

  /** The stored session, if any: the list shows from IndexedDB before the socket is up. */
  static async restore(): Promise<Session | null> {
    bootMark('restore');
    const saved = await loadSession();
    bootMark('session-loaded', { signedIn: saved !== null });
    if (!saved) return null;
    const { store, idb, release } = await openStore();
    const client = Session.newClient(store, saved.token);
    await client.init();
    bootMark('client-init');
    const s = new Session(client, store, saved, idb !== null, release);
    s.start();
    return s;
  }

  static async login(username: string, password: string): Promise<Session> {
    const { store, idb, release } = await openStore();
    let saved: SavedSession;
    try {
      const meta = await store.loadMeta();
      const deviceId = meta.deviceId ?? newDeviceId();
      const r = await MagpieClient.login({ baseUrl: location.origin }, { username, password, deviceId, platform: 'web', appVersion: APP_VERSION });
      // Another account used this browser before: its data goes before anything is shown.
      if (meta.userId && meta.userId !== r.userId) await store.clear();
      await store.saveMeta({ deviceId: r.deviceId, userId: r.userId });
      saved = { token: r.token, userId: r.userId, username };
    } catch (err) {
      idb?.close();
      release();
      throw err;
    }
    await saveSession(saved);
    const client = Session.newClient(store, saved.token);
    await client.init();
    const s = new Session(client, store, saved, idb !== null, release);
    s.start();
    return s;
  }

  static async register(username: string, password: string, nickname?: string): Promise<Session> {
    await MagpieClient.register({ baseUrl: location.origin }, { username, password, ...(nickname ? { nickname } : {}) });
    return Session.login(username, password);
  }

  private start(): void {
    this.client.start();
  }

  /**
   * Log this device out (or, with `all`, every session of the account: POST /api/logout-all):
   * the push binding ends with the session; local data is removed.
   */
  async logout(opts: { all?: boolean } = {}): Promise<void> {
    await fetch('/api/push/device', { method: 'DELETE', headers: { authorization: `Bearer ${this.saved.token}` } }).catch(() => undefined);
    try {
      await this.client.logout({ clearLocalData: true, ...(opts.all ? { all: true } : {}) });
    } catch (err) {
      if (!(err instanceof MagpieClientError)) throw err;
    }
    await this.forget();
  }

  /**
   * Change the password: POST /api/password {currentPassword, newPassword}. Resolves with
   * nothing; rejects with a sentence for the user.
   */
  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    let r: Response;
    try {
      r = await fetch('/api/password', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.saved.token}` },
        body: JSON.stringify({ currentPassword, newPassword }),
      });
    } catch {
      throw new Error(t('settings.pwErrOffline'));
    }
    if (r.ok) return;
    const body = (await r.json().catch(() => null)) as { error?: { code?: string; message?: string }; code?: string } | null;
    const code = body?.error?.code ?? body?.code;
    if (r.status === 404 && (!code || code === 'not_found')) throw new Error(t('settings.pwErrUnsupported'));
    if (code === 'bad_credentials' || code === 'unauthorized' || r.status === 401) throw new Error(t('settings.pwErrWrong'));
    if (code === 'invalid' || r.status === 400) throw new Error(t('settings.pwErrInvalid'));
    if (code === 'rate_limited' || r.status === 429) throw new Error(t('settings.pwErrRateLimited'));
    throw new Error(t('settings.pwErrOther'));
  }

  /** The session ended elsewhere (kicked, token revoked): forget it here (`clear`: and this browser's copy of the data). */
  async forget(opts: { clear?: boolean } = {}): Promise<void> {
    if (opts.clear && this.leader) await this.store.clear().catch(() => undefined);
    this.dispose();
    await saveSession(null);
    localStorage.removeItem(`magpie.directory.${this.saved.userId}`);
    // Drafts are this user's text too: they go with the rest of the local data.
    const drafts = `magpie.draft.${this.saved.userId}.`;
    for (const k of Object.keys(localStorage)) if (k.startsWith(drafts)) localStorage.removeItem(k);
  }

  dispose(): void {
    this.offNetwork();
    this.connection.dispose();
    this.conversations.dispose();
    this.contacts.dispose();
    this.joinRequests.dispose();
    this.redPackets.dispose();
    this.tabs.dispose();
    this.directory.dispose();
    this.client.close();
    this.releaseStore();
    // The IndexedDB connection stays open: writes still under way finish (a new session opens its own).
  }
}

/** A device id from the CSPRNG (crypto.randomUUID needs a secure context; getRandomValues does not). */
function newDeviceId(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return `web-${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
}
