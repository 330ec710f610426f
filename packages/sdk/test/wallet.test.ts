/** Yuan text ↔ fen without floating point, and the typed refusals of WalletApi. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatYuan, parseYuan } from '../src/money.ts';
import { MagpieClientError } from '../src/errors.ts';
import { RestApi, type FetchLike } from '../src/rest.ts';
import { WalletApi, WalletError, walletRefusalOf } from '../src/wallet.ts';

describe('yuan text', () => {
  it('parses up to two decimals exactly (no float: 0.29 is 29 fen, 1.1 is 110)', () => {
    const cases: [string, number | null][] = [
      ['0.29', 29],
      ['1.1', 110],
      ['1.10', 110],
      ['12', 1200],
      ['12.', 1200],
      [' ¥5.55 ', 555],
      ['￥0.01', 1],
      ['0', 0],
      ['1234567890123.99', 123456789012399],
      ['0.001', null],
      ['-1', null],
      ['1e3', null],
      ['1.2.3', null],
      ['', null],
      ['.5', null],
      ['12345678901234', null],
      ['１２', null],
    ];
    for (const [text, fen] of cases) assert.equal(parseYuan(text), fen, text);
    // Every cent from 0.00 to 9.99 round-trips.
    for (let f = 0; f < 1000; f++) assert.equal(parseYuan(formatYuan(f)), f);
  });
  it('formats fen as yuan with two decimals', () => {
    assert.equal(formatYuan(0), '0.00');
    assert.equal(formatYuan(5), '0.05');
    assert.equal(formatYuan(555), '5.55');
    assert.equal(formatYuan(-1230), '-12.30');
    assert.equal(formatYuan(Number.MAX_SAFE_INTEGER), '90071992547409.91');
    assert.throws(() => formatYuan(1.5), RangeError);
  });
});

describe('WalletApi refusals', () => {
  const answer = (status: number, body: unknown): FetchLike => async () => ({ ok: status < 300, status, text: async () => JSON.stringify(body) });
  const api = (f: FetchLike) => new WalletApi(new RestApi({ baseUrl: 'http://x', fetch: f }), 'tok');

  it('maps code and details.reason to a WalletError reason', async () => {
    const cases: [number, unknown, string][] = [
      [403, { error: { code: 'forbidden', message: 'insufficient balance', details: { reason: 'insufficient_balance' } } }, 'insufficient_balance'],
      [403, { error: { code: 'muted', message: 'muted' } }, 'muted'],
      [403, { error: { code: 'forbidden', message: 'x', details: { reason: 'pin_locked', lockedUntil: 99 } } }, 'pin_locked'],
      [403, { error: { code: 'forbidden', message: 'not a member of the conversation of this red packet' } }, 'not_member'],
      [401, { error: { code: 'bad_credentials', message: 'Wrong username or password.' } }, 'bad_password'],
    ];
    for (const [status, body, reason] of cases) {
      await assert.rejects(api(answer(status, body)).balance(), (e: unknown) => e instanceof WalletError && e.reason === reason && e.status === status);
    }
    const locked = await api(answer(403, { error: { code: 'forbidden', message: 'x', details: { reason: 'pin_locked', lockedUntil: 99 } } })).withdraw(1, '123456').catch((e: WalletError) => e);
    assert.equal((locked as WalletError).lockedUntil, 99);
    const wrong = await api(answer(403, { error: { code: 'forbidden', message: 'x', details: { reason: 'pin_wrong', triesLeft: 2 } } })).withdraw(1, '123456').catch((e: WalletError) => e);
    assert.equal((wrong as WalletError).triesLeft, 2);
  });

  it('an open that finds every share claimed is the all_claimed refusal; busy is retried', async () => {
    let calls = 0;
    const f: FetchLike = async () => {
      calls++;
      const body = calls === 1 ? { result: 'busy', retryAfterMs: 5 } : { result: 'all_claimed' };
      return { ok: true, status: 200, text: async () => JSON.stringify(body) };
    };
    await assert.rejects(api(f).openRedPacket('rp1'), (e: unknown) => e instanceof WalletError && e.reason === 'all_claimed');
    assert.equal(calls, 2);
  });

  it('network failures stay MagpieClientError (retry the same call)', async () => {
    const f: FetchLike = async () => {
      throw new Error('ECONNREFUSED');
    };
    await assert.rejects(api(f).balance(), (e: unknown) => e instanceof MagpieClientError && !(e instanceof WalletError) && e.code === 'network');
    assert.equal(walletRefusalOf(new MagpieClientError('invalid', 'x')), 'invalid');
  });
});
