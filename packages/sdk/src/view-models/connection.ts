import type { ClientState, ConnectionInfo, MagpieClient, OfflineReason } from '../client.ts';
import type { SyncProgress } from '../sync-engine.ts';
import { ViewModel } from './view-model.ts';

/**
 * What a banner shows: the client's state folded into what a user needs to know.
 * `offline`: the network is up but there is no connection (see `offlineReason`);
 * `waiting_for_network`: the platform says the network is down. The client keeps retrying in
 * both (`nextRetryAt`).
 */
export type ConnectionStatus = 'connecting' | 'syncing' | 'online' | 'offline' | 'waiting_for_network' | 'signed_out';

export interface ConnectionState {
  status: ConnectionStatus;
  client: ClientState;
  /** Items or entries received in the current sync run. */
  received: number;
  /** A short sentence for the banner; empty when online. */
  label: string;
  /** What the platform says about the network (browser: navigator.onLine). */
  network: boolean;
  /**
   * Why there is no connection: `no_network` (the platform says the network is down),
   * `server_unreachable` (network up, attempts to reach the server fail), `connection_lost`
   * (a working connection just dropped). Null while online, connecting or signed out.
   */
  offlineReason: OfflineReason | null;
  /** When the client tries again by itself (epoch ms on the client's clock), for "retrying in 42 s"; null when no attempt is scheduled. refresh() tries at once. */
  nextRetryAt: number | null;
  /** Failed attempts in a row. */
  failures: number;
}

const REASON_LABELS: Record<OfflineReason, string> = {
  no_network: 'No network — waiting for it',
  server_unreachable: 'Server unreachable — retrying',
  connection_lost: 'Connection lost — reconnecting',
};

const LABELS: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  syncing: 'Syncing…',
  online: '',
  offline: 'Offline — reconnecting',
  waiting_for_network: 'No network — waiting for it',
  signed_out: 'Signed out',
};

function statusOf(s: ClientState): ConnectionStatus {
  switch (s) {
    case 'connecting':
    case 'authenticating':
      return 'connecting';
    case 'syncing':
      return 'syncing';
    case 'online':
      return 'online';
    case 'waiting_for_network':
      return 'waiting_for_network';
    case 'kicked':
    case 'logged_out':
      return 'signed_out';
    default:
      return 'offline';
  }
}

/**
 * The connection banner: connecting, syncing (with progress), online, offline — and when
 * offline, why (`offlineReason`) and when the next attempt is (`nextRetryAt`; render the
 * countdown in the UI). Feed it the platform's network events with setNetworkOnline (they go
 * on to the client): while the network is down the banner says so even before the socket
 * notices.
 */
export class ConnectionViewModel extends ViewModel<ConnectionState> {
  constructor(
    private readonly client: MagpieClient,
    network = true,
  ) {
    const info = client.connection;
    super({ status: statusOf(client.state), client: client.state, received: 0, label: LABELS[statusOf(client.state)], network, offlineReason: info.offlineReason, nextRetryAt: info.nextRetryAt, failures: info.failures });
    this.apply(client.connection);
    this.own(client.on('connection', (c) => this.apply(c)));
    this.own(client.on('syncProgress', (p: SyncProgress) => this.progress(p)));
  }

  /** Reconnect now / pull now (a "retry" button). */
  refresh(): Promise<void> {
    return this.client.refresh();
  }

  /** The platform's network went down or came back (browser `offline` / `online` events). */
  setNetworkOnline(online: boolean): void {
    this.setState({ network: online });
    this.client.setNetworkOnline(online);
    this.apply(this.client.connection);
  }

  private apply(info: ConnectionInfo): void {
    const state: ClientState = info.state;
    let status = statusOf(state);
    let offlineReason = info.offlineReason;
    let label = offlineReason ? REASON_LABELS[offlineReason] : LABELS[status];
    if (!this.getSnapshot().network && status !== 'signed_out') {
      status = 'waiting_for_network';
      offlineReason = 'no_network';
      label = REASON_LABELS.no_network;
    }
    this.setState({ status, client: state, label, offlineReason, nextRetryAt: info.nextRetryAt, failures: info.failures, ...(status === 'syncing' ? {} : { received: 0 }) });
  }

  private progress(p: SyncProgress): void {
    if (this.getSnapshot().status !== 'syncing' || p.phase === 'done') return;
    this.setState({ received: p.received, label: p.received > 0 ? `Syncing… ${p.received}` : LABELS.syncing });
  }
}
