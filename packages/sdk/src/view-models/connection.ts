import type { ClientState, MagpieClient } from '../client.ts';
import type { SyncProgress } from '../sync-engine.ts';
import { ViewModel } from './view-model.ts';

/** What a banner shows: the client's state folded into what a user needs to know. */
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
}

const LABELS: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  syncing: 'Syncing…',
  online: '',
  offline: 'Offline — reconnecting',
  waiting_for_network: 'Offline — waiting for the network',
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
 * The connection banner: connecting, syncing (with progress), online, offline. Feed it the
 * platform's network events with setNetworkOnline (they go on to the client): while the
 * network is down the banner says offline even before the socket notices.
 */
export class ConnectionViewModel extends ViewModel<ConnectionState> {
  constructor(
    private readonly client: MagpieClient,
    network = true,
  ) {
    super({ status: statusOf(client.state), client: client.state, received: 0, label: LABELS[statusOf(client.state)], network });
    this.apply(client.state);
    this.own(client.on('state', ({ state }) => this.apply(state)));
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
    this.apply(this.client.state);
  }

  private apply(state: ClientState): void {
    let status = statusOf(state);
    let label = LABELS[status];
    if (!this.getSnapshot().network && status !== 'signed_out') {
      status = 'offline';
      label = LABELS.waiting_for_network;
    }
    this.setState({ status, client: state, label, ...(status === 'syncing' ? {} : { received: 0 }) });
  }

  private progress(p: SyncProgress): void {
    if (this.getSnapshot().status !== 'syncing' || p.phase === 'done') return;
    this.setState({ received: p.received, label: p.received > 0 ? `Syncing… ${p.received}` : LABELS.syncing });
  }
}
