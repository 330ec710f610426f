import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/config.ts';

test('the input and output limits of issue 13 are settings with defaults and env names', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.deepEqual(
    [d.limits.maxJsonDepth, d.limits.maxInflightPerConnection, d.limits.maxReplyBytes, d.limits.maxBufferedBytes, d.limits.slowConsumerMs, d.limits.pingRate, d.limits.pingBurst],
    [32, 8, 256 * 1024, 4 * 1024 * 1024, 10_000, 5, 20],
  );
  assert.deepEqual(d.metrics, { host: '127.0.0.1' });
  const c = loadConfig({
    MAGPIE_CONFIG: '',
    MAGPIE_MAX_JSON_DEPTH: '64',
    MAGPIE_MAX_INFLIGHT: '2',
    MAGPIE_MAX_REPLY_BYTES: '65536',
    MAGPIE_MAX_BUFFERED_BYTES: '1048576',
    MAGPIE_SLOW_CONSUMER_MS: '3000',
    MAGPIE_PING_RATE: '1',
    MAGPIE_PING_BURST: '3',
    MAGPIE_METRICS_TOKEN: 'a-scrape-token-of-length',
    MAGPIE_METRICS_PORT: '9100',
    MAGPIE_METRICS_HOST: '10.0.0.1',
  } as NodeJS.ProcessEnv);
  assert.deepEqual(
    [c.limits.maxJsonDepth, c.limits.maxInflightPerConnection, c.limits.maxReplyBytes, c.limits.maxBufferedBytes, c.limits.slowConsumerMs, c.limits.pingRate, c.limits.pingBurst],
    [64, 2, 65536, 1048576, 3000, 1, 3],
  );
  assert.deepEqual(c.metrics, { token: 'a-scrape-token-of-length', port: 9100, host: '10.0.0.1' });
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_MAX_JSON_DEPTH: '5000' } as NodeJS.ProcessEnv), /maxJsonDepth/, 'beyond what the validator stack takes');
});

test('sends have a per-connection window of their own (issue 23): limits.maxSendsInFlightPerConnection, MAGPIE_MAX_SENDS_IN_FLIGHT_PER_CONNECTION', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.deepEqual([d.limits.maxSendsInFlightPerConnection, d.limits.maxInflightPerConnection], [32, 8]);
  const c = loadConfig({ MAGPIE_CONFIG: '', MAGPIE_MAX_SENDS_IN_FLIGHT_PER_CONNECTION: '16' } as NodeJS.ProcessEnv);
  assert.equal(c.limits.maxSendsInFlightPerConnection, 16);
  for (const bad of ['0', '-1', '2.5', 'many', '257']) {
    assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_MAX_SENDS_IN_FLIGHT_PER_CONNECTION: bad } as NodeJS.ProcessEnv), /invalid configuration:\n.*limits\.maxSendsInFlightPerConnection/, bad);
  }
});
