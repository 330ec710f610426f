/**
 * Local push providers for bench/push.ts, in their own process so their CPU is not the
 * server's: the APNs (HTTP/2 + TLS), FCM v1 and Web Push fakes of @magpie/server/testing,
 * counting instead of keeping what they receive. Talks over IPC.
 */
import { FakeApns, FakeFcm, FakeWebPush } from '@magpie/server/testing';

const [apns, fcm, webpush] = await Promise.all([new FakeApns().start(), new FakeFcm().start(), new FakeWebPush().start()]);
for (const f of [apns, fcm, webpush]) {
  f.received.keep = false;
  (f.log as unknown[]).push = () => 0; // count only
}

export interface FakeInfo {
  apns: { url: string; caFile: string | undefined; teamId: string; keyId: string; key: string; topic: string };
  fcm: { url: string; projectId: string; serviceAccount: string };
  webpush: { url: string };
}
export interface FakeStats {
  apns: { total: number; lastAt: number };
  fcm: { total: number; lastAt: number };
  webpush: { total: number; lastAt: number };
}

const info: FakeInfo = {
  apns: { url: apns.url, caFile: apns.caFile, teamId: apns.teamId, keyId: apns.keyId, key: apns.privateKeyPem, topic: apns.topic },
  fcm: { url: fcm.url, projectId: fcm.projectId, serviceAccount: JSON.stringify(fcm.serviceAccount) },
  webpush: { url: webpush.url },
};
process.send!({ ready: info });

process.on('message', (m: { cmd: string; n?: number; id?: number }) => {
  if (m.cmd === 'subscribe') {
    const subs = Array.from({ length: m.n ?? 1 }, () => webpush.subscribe());
    process.send!({ id: m.id, subs });
  } else if (m.cmd === 'stats') {
    const s = (f: { received: { total: number; lastAt: number } }) => ({ total: f.received.total, lastAt: f.received.lastAt });
    const stats: FakeStats = { apns: s(apns), fcm: s(fcm), webpush: s(webpush) };
    process.send!({ id: m.id, stats });
  } else if (m.cmd === 'stop') {
    void Promise.all([apns.stop(), fcm.stop(), webpush.stop()]).then(() => process.exit(0));
  }
});
