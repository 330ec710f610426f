// @magpie/server/testing: local servers that speak the push providers' real protocols (APNs over
// HTTP/2 with JWT auth, FCM HTTP v1 with OAuth, Web Push with RFC 8291 decryption, a webhook
// relay). Magpie's tests and benchmarks point the push settings at them; operators can do the
// same to try a configuration without reaching Apple, Google or a browser vendor.
export { FakeApns, apnsToken, type ApnsReceived } from './apns-server.ts';
export { FakeFcm, fcmToken, type FcmReceived } from './fcm-server.ts';
export { FakeWebPush, decryptAes128gcm, type WebPushReceived } from './webpush-server.ts';
export { FakeWebhookRelay, type WebhookReceived } from './webhook-relay.ts';
export { TcpProxy, type TcpProxyOptions, type ProxyBackend } from './tcp-proxy.ts';
// The gateway's per-connection writer (frames, batching, back-pressure) for micro-benchmarks of
// its write path without a server (bench/fanout-flush.mjs); not an API for applications.
export { Connection, SharedFrame } from '../gateway/connection.ts';
// SQLite's deferred search indexer on an engine of its own, for the in-process benchmark of its
// CPU per message (bench/search-index-text.ts); not an API for applications.
export { SearchIndexer } from '../search/search-indexer.ts';
export { SqliteEngine } from '../db/sqlite-engine.ts';
