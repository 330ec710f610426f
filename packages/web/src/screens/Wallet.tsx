import { useCallback, useEffect, useState } from 'react';
import { parseYuan, type LedgerEntry, type PinStatus } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import type { Session } from '../session.ts';
import { Header, Notice } from './common.tsx';
import { dateTime } from '../i18n/format.ts';
import { walletErrorText, yuan } from '../wallet-text.ts';

const PAGE = 20;

/** Wallet: balance, payment PIN (set once, reset with the password), top-up and withdrawal through the provider, the statement. */
export function WalletScreen(props: { session: Session }) {
  const { wallet } = props.session;
  const { t } = useTranslation();
  const [balance, setBalance] = useState<number | null>(null);
  const [pin, setPin] = useState<PinStatus | null>(null);
  const [entries, setEntries] = useState<LedgerEntry[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      const [b, p, s] = await Promise.all([wallet.balance(), wallet.pinStatus(), wallet.statement({ limit: PAGE })]);
      setBalance(b);
      setPin(p);
      setEntries(s.entries);
      setNext(s.next);
    } catch (err) {
      setError(walletErrorText(err));
    }
  }, [wallet]);
  useEffect(() => void reload(), [reload]);

  const run = async (fn: () => Promise<string | null>) => {
    setError(null);
    setNotice(null);
    try {
      const msg = await fn();
      if (msg) setNotice(msg);
      await reload();
      return true;
    } catch (err) {
      setError(walletErrorText(err));
      return false;
    }
  };

  const more = async () => {
    if (next === null) return;
    const s = await wallet.statement({ limit: PAGE, before: next }).catch((err: unknown) => (setError(walletErrorText(err)), null));
    if (!s) return;
    setEntries((e) => [...e, ...s.entries]);
    setNext(s.next);
  };

  return (
    <section className="wallet" aria-label={t('wallet.title')} data-testid="wallet">
      <Header title={t('wallet.title')} back="/" />
      <div className="wallet-body">
        <div className="wallet-balance">
          <span className="muted">{t('wallet.balance')}</span>
          <strong data-testid="wallet-balance" data-fen={balance ?? ''}>
            {balance === null ? '…' : yuan(balance)}
          </strong>
        </div>
        <Notice error={error} notice={notice} />
        <MoneyForm
          session={props.session}
          pinNeeded={pin?.required ?? true}
          onTopUp={(fen) => run(async () => (await wallet.topUp(fen), t('wallet.toppedUp', { amount: yuanPlain(fen) })))}
          onWithdraw={(fen, p) =>
            run(async () => {
              const r = await wallet.withdraw(fen, p || undefined);
              return t('wallet.withdrawn', { amount: yuanPlain(fen), status: t(`wallet.status_${r.payment.status}`) });
            })
          }
          onBadAmount={() => setError(t('wallet.err_bad_amount'))}
        />
        <p className="muted small" data-testid="sandbox-note">
          {t('wallet.sandbox')}
        </p>
        <PinForm status={pin} onSet={(p) => run(async () => (await wallet.setPin(p), t('wallet.pinSaved')))} onReset={(pw, p) => run(async () => (await wallet.resetPin(pw, p), t('wallet.pinSaved')))} />
        <h3>{t('wallet.statement')}</h3>
        {entries.length === 0 && <p className="muted">{t('wallet.noEntries')}</p>}
        <ol className="statement" data-testid="statement">
          {entries.map((e) => (
            <li key={e.id} data-testid="statement-entry" data-kind={e.kind} data-amount={e.amount}>
              <span>{t(`wallet.kind_${e.kind}`)}</span>
              <time className="muted small" dateTime={new Date(e.at).toISOString()}>
                {dateTime(e.at)}
              </time>
              <strong className={e.amount < 0 ? 'debit' : 'credit'}>{`${e.amount > 0 ? '+' : ''}${yuan(e.amount)}`}</strong>
            </li>
          ))}
        </ol>
        {next !== null && (
          <button type="button" className="link" onClick={() => void more()} data-testid="statement-more">
            {t('wallet.more')}
          </button>
        )}
      </div>
    </section>
  );
}

const yuanPlain = (fen: number): string => yuan(fen).replace(/^¥/, '');

function MoneyForm(props: { session: Session; pinNeeded: boolean; onTopUp(fen: number): Promise<boolean>; onWithdraw(fen: number, pin: string): Promise<boolean>; onBadAmount(): void }) {
  const { t } = useTranslation();
  const [amount, setAmount] = useState('');
  const [pin, setPin] = useState('');
  const [busy, setBusy] = useState(false);
  const go = async (kind: 'topup' | 'withdraw') => {
    const fen = parseYuan(amount);
    if (fen === null || fen < 1) return props.onBadAmount();
    setBusy(true);
    const ok = kind === 'topup' ? await props.onTopUp(fen) : await props.onWithdraw(fen, pin);
    setBusy(false);
    if (ok) {
      setAmount('');
      setPin('');
    }
  };
  return (
    <form className="wallet-money" onSubmit={(e) => (e.preventDefault(), void go('topup'))}>
      <label>
        {t('wallet.amount')}
        <input inputMode="decimal" autoComplete="off" value={amount} onChange={(e) => setAmount(e.target.value)} data-testid="wallet-amount" />
      </label>
      {props.pinNeeded && (
        <label>
          {t('wallet.enterPin')}
          <input type="password" inputMode="numeric" autoComplete="off" maxLength={6} value={pin} onChange={(e) => setPin(e.target.value.replace(/\D/g, ''))} data-testid="wallet-pin" />
        </label>
      )}
      <div className="row">
        <button type="submit" className="primary" disabled={busy} data-testid="topup">
          {t('wallet.topUp')}
        </button>
        <button type="button" disabled={busy} onClick={() => void go('withdraw')} data-testid="withdraw">
          {t('wallet.withdraw')}
        </button>
      </div>
    </form>
  );
}

function PinForm(props: { status: PinStatus | null; onSet(pin: string): Promise<boolean>; onReset(password: string, pin: string): Promise<boolean> }) {
  const { t } = useTranslation();
  const [pin, setPin] = useState('');
  const [password, setPassword] = useState('');
  const s = props.status;
  if (!s) return null;
  const reset = s.set;
  return (
    <form
      className="wallet-pin"
      data-testid="pin-form"
      onSubmit={(e) => {
        e.preventDefault();
        void (reset ? props.onReset(password, pin) : props.onSet(pin)).then((ok) => ok && (setPin(''), setPassword('')));
      }}
    >
      <h3>{t('wallet.pin')}</h3>
      <p className="muted small" data-testid="pin-status" data-set={s.set} data-locked={s.lockedUntil !== null}>
        {s.lockedUntil !== null ? t('wallet.pinLocked', { time: dateTime(s.lockedUntil) }) : s.set ? t('wallet.pinSet') : t('wallet.pinNotSet')}
      </p>
      {reset && (
        <label>
          {t('wallet.password')}
          <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} data-testid="pin-password" />
        </label>
      )}
      <label>
        {t('wallet.newPin')}
        <input type="password" inputMode="numeric" autoComplete="off" maxLength={6} value={pin} onChange={(e) => setPin(e.target.value.replace(/\D/g, ''))} data-testid="pin-new" />
      </label>
      <button type="submit" disabled={pin.length !== 6 || (reset && !password)} data-testid="pin-save">
        {reset ? t('wallet.resetPin') : t('wallet.setPin')}
      </button>
    </form>
  );
}
