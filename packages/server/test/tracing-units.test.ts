import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { TelemetryReportSchema } from '@magpie/protocol';
import { EVENTS_PER_MESSAGE, TraceJournal } from '../src/tracing/journal.ts';
import { ClientTelemetry } from '../src/tracing/telemetry.ts';
import { MessageTracer } from '../src/tracing/tracer.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import { traceAcrossNodes } from '../src/tracing/lookup.ts';

describe('trace journal', () => {
  it('keeps the last `capacity` messages and forgets the oldest', () => {
    const j = new TraceJournal(3);
    for (const id of ['m1', 'm2', 'm3', 'm4']) j.record(id, { stage: 'send', at: 1, node: 'n' });
    assert.equal(j.size, 3);
    assert.equal(j.get('m1'), undefined);
    assert.deepEqual(j.get('m4')?.events.map((e) => e.stage), ['send']);
  });

  it('caps the events of one message and counts the rest', () => {
    const j = new TraceJournal(10);
    for (let i = 0; i < EVENTS_PER_MESSAGE + 5; i++) j.record('big', { stage: 'deliver', at: i, node: 'n', userId: `u${i}` });
    const got = j.get('big')!;
    assert.equal(got.events.length, EVENTS_PER_MESSAGE);
    assert.equal(got.dropped, 5);
  });

  it('bounds the events of all messages: a big fan-out pushes older messages out', () => {
    const j = new TraceJournal(100, 300);
    for (let m = 0; m < 5; m++) for (let i = 0; i < 100; i++) j.record(`m${m}`, { stage: 'deliver', at: i, node: 'n' });
    assert.ok(j.events <= 300, `${j.events} events`);
    assert.equal(j.get('m0'), undefined, 'the oldest went');
    assert.equal(j.get('m4')?.events.length, 100, 'the newest is whole');
  });

  it('keeps a detail object as given, and a message whose first event was overwritten starts again', () => {
    const j = new TraceJournal(10, EVENTS_PER_MESSAGE);
    j.record('old', { stage: 'push', at: 1, node: 'n', userId: 'u', deviceId: 'd', detail: { provider: 'fcm', lane: 'live' } });
    assert.deepEqual(j.get('old')!.events, [{ stage: 'push', at: 1, node: 'n', userId: 'u', deviceId: 'd', detail: { provider: 'fcm', lane: 'live' } }]);
    for (let i = 0; i < EVENTS_PER_MESSAGE; i++) j.record('big', { stage: 'deliver', at: i, node: 'n' });
    assert.equal(j.get('old'), undefined, 'its only event was overwritten');
    j.record('old', { stage: 'ack', at: 2, node: 'n' });
    assert.deepEqual(j.get('old')!.events.map((e) => e.stage), ['ack']);
  });

  it('grows its columns as events come and keeps every field across the growth', () => {
    const j = new TraceJournal(2000);
    for (let m = 0; m < 2000; m++) for (let k = 0; k < 5; k++) j.record(`m${m}`, { stage: 'deliver', at: m * 10 + k, node: 'n', userId: `u${m}`, inboxSeq: k });
    assert.equal(j.events, 10_000);
    assert.deepEqual(j.get('m0')!.events[4], { stage: 'deliver', at: 4, node: 'n', userId: 'u0', inboxSeq: 4 });
    assert.deepEqual(j.get('m1999')!.events.map((e) => e.at), [19990, 19991, 19992, 19993, 19994]);
  });

  it('size 0 records nothing', () => {
    const j = new TraceJournal(0);
    j.record('m', { stage: 'send', at: 1, node: 'n' });
    assert.equal(j.get('m'), undefined);
  });

  it('a tracer without an endpoint exports nothing and journals every stage in time order', async () => {
    const t = await MessageTracer.create('node-a', { journalSize: 100, sampleRatio: 1, serviceName: 'magpie' });
    assert.equal(t.exporting, false);
    assert.equal(t.traceparent('m1'), undefined);
    t.sendStarted('m1', 1000, 'alice', 'd:alice:bob');
    t.committed('m1', 1001, 1003, 4);
    t.fannedOut('m1', 1004, 1005, 2, false);
    t.sendEnded('m1', 1000, 'alice', 'ok');
    t.delivered('m1', 'bob', 'phone', 7, true);
    t.retried('m1', 'bob', 'phone', 7, 1);
    t.ended('m1', 'bob', 'phone', 7, 'ack', 1);
    const trace = await traceAcrossNodes(new MemoryBus(), t, 'm1');
    assert.deepEqual(trace.nodes, ['node-a']);
    assert.deepEqual(trace.events.map((e) => e.stage), ['send', 'commit', 'fanout', 'deliver', 'retry', 'ack']);
    assert.deepEqual(trace.events[0]!.detail, { outcome: 'ok' });
    assert.ok(trace.events[0]!.durMs! > 0, 'the send has its duration');
    assert.deepEqual(trace.events[1]!.detail, { batch: 4 });
    assert.equal(trace.events[1]!.durMs, 2);
    assert.deepEqual(trace.events[2]!.detail, { recipients: 2, superGroup: false });
    assert.deepEqual(trace.events[3], { stage: 'deliver', at: trace.events[3]!.at, node: 'node-a', userId: 'bob', deviceId: 'phone', inboxSeq: 7 });
    assert.equal(trace.events[5]!.attempt, 1);
    await assert.rejects(traceAcrossNodes(new MemoryBus(), t, 'nope'), /no node's trace journal holds message nope/);
  });
});

describe('client connect telemetry', () => {
  const report = (appVersion: string, samples = [{ sinceStartMs: 10, ok: true, connectMs: 120, tlsMs: 40, firstPacketMs: 30 }]) => TelemetryReportSchema.parse({ platform: 'ios', appVersion, samples });

  it('aggregates per platform and version, and buckets versions past the cap as `other`', async () => {
    const registry = new Registry();
    const t = new ClientTelemetry(registry, 2);
    t.record(report('1.0.0'));
    t.record(report('1.1.0', [{ sinceStartMs: 5, ok: false, failure: 'timeout' } as never]));
    t.record(report('2.0.0'));
    t.record(report('3.0.0'));
    const text = await registry.metrics();
    assert.match(text, /magpie_client_connect_seconds_count\{platform="ios",version="1.0.0"\} 1/);
    assert.match(text, /magpie_client_connect_seconds_count\{platform="ios",version="other"\} 2/);
    assert.match(text, /magpie_client_tls_seconds_sum\{platform="ios",version="1.0.0"\} 0.04/);
    assert.match(text, /magpie_client_connects_total\{platform="ios",version="1.1.0",outcome="failure",failure="timeout"\} 1/);
    assert.doesNotMatch(text, /version="2.0.0"/);
  });

  it('the schema refuses what would blow up labels or lie about time', () => {
    const bad = (x: unknown) => TelemetryReportSchema.safeParse(x).success;
    assert.equal(bad({ platform: 'ios', appVersion: '1.0 beta', samples: [{ sinceStartMs: 1, ok: true }] }), false);
    assert.equal(bad({ platform: 'toaster', appVersion: '1.0', samples: [{ sinceStartMs: 1, ok: true }] }), false);
    assert.equal(bad({ platform: 'ios', appVersion: '1.0', samples: [] }), false);
    assert.equal(bad({ platform: 'ios', appVersion: '1.0', samples: [{ sinceStartMs: 1, ok: true, connectMs: -5 }] }), false);
    assert.equal(bad({ platform: 'ios', appVersion: '1.0', samples: [{ sinceStartMs: 1, ok: false, failure: 'cosmic rays' }] }), false);
    assert.equal(bad({ platform: 'ios', appVersion: '1.0', samples: [{ sinceStartMs: 1, ok: true, connectMs: 5 }] }), true);
  });
});
