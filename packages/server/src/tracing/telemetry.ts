import { Counter, Histogram, type Registry } from 'prom-client';
import type { TelemetryReport } from '@magpie/protocol';

/** Connect-time buckets (s): from a LAN's few ms to a weak mobile network's tens of seconds. */
const BUCKETS = [0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30];

/**
 * Client connect telemetry (the Mobile Taobao gateway write-up: measure the connection as
 * the client sees it). Reports are aggregated into Prometheus metrics per platform and app
 * version; versions are bounded: the first `maxVersions` distinct ones keep their own label,
 * later ones count as `other` (label cardinality must not grow with what clients send).
 */
export class ClientTelemetry {
  private readonly versions = new Set<string>();
  private readonly connectSeconds: Histogram<'platform' | 'version'>;
  private readonly tlsSeconds: Histogram<'platform' | 'version'>;
  private readonly firstPacketSeconds: Histogram<'platform' | 'version'>;
  private readonly attempts: Counter<'platform' | 'version' | 'outcome' | 'failure'>;

  constructor(
    registry: Registry,
    private readonly maxVersions: number,
  ) {
    const labelNames = ['platform', 'version'] as const;
    this.connectSeconds = new Histogram({ name: 'magpie_client_connect_seconds', help: 'Client-measured time to an open WebSocket (TCP, TLS, upgrade), successful attempts', labelNames, buckets: BUCKETS, registers: [registry] });
    this.tlsSeconds = new Histogram({ name: 'magpie_client_tls_seconds', help: 'Client-measured TLS handshake time', labelNames, buckets: BUCKETS, registers: [registry] });
    this.firstPacketSeconds = new Histogram({ name: 'magpie_client_first_packet_seconds', help: 'Client-measured time from the open socket to the first server frame', labelNames, buckets: BUCKETS, registers: [registry] });
    this.attempts = new Counter({ name: 'magpie_client_connects_total', help: 'Client-reported connect attempts by outcome (success/failure) and failure reason', labelNames: ['platform', 'version', 'outcome', 'failure'] as const, registers: [registry] });
  }

  /** The metric label of an app version: itself while fewer than maxVersions are known, else `other`. */
  versionLabel(version: string): string {
    if (this.versions.has(version)) return version;
    if (this.versions.size >= this.maxVersions) return 'other';
    this.versions.add(version);
    return version;
  }

  /** Aggregate one validated report; returns how many samples were counted. */
  record(report: TelemetryReport): number {
    const labels = { platform: report.platform, version: this.versionLabel(report.appVersion) };
    for (const s of report.samples) {
      if (s.ok) {
        this.attempts.inc({ ...labels, outcome: 'success', failure: '' });
        if (s.connectMs !== undefined) this.connectSeconds.observe(labels, s.connectMs / 1000);
        if (s.tlsMs !== undefined) this.tlsSeconds.observe(labels, s.tlsMs / 1000);
        if (s.firstPacketMs !== undefined) this.firstPacketSeconds.observe(labels, s.firstPacketMs / 1000);
      } else {
        this.attempts.inc({ ...labels, outcome: 'failure', failure: s.failure ?? 'other' });
      }
    }
    return report.samples.length;
  }
}
