import { useEffect, useState } from 'react';
import { parseYuan, type LocalMessage, type PacketDetails, type RedPacketBody, type RedPacketStatusBody } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import type { Session } from '../session.ts';
import { timeOfDay } from '../i18n/format.ts';
import { walletErrorText, yuan } from '../wallet-text.ts';
import { Icon } from './icons.tsx';

/** The details of a packet in view, kept fresh by the session's RedPacketWatch. */
function usePacket(session: Session, packetId: string): PacketDetails | undefined {
  const watch = session.redPackets;
  const [d, setD] = useState<PacketDetails | undefined>(() => watch.details(packetId));
  useEffect(() => {
    const off = watch.on('details', (x) => x.packet.id === packetId && setD(x));
    watch.watch(packetId);
    setD(watch.details(packetId));
    return () => {
      off();
      watch.unwatch(packetId);
    };
  }, [watch, packetId]);
  return d;
}

/**
 * A red packet in the chat: the red bubble (greeting, state), which opens with an animation
 * and then shows the result sheet; under the sender's own packet, a grey notice per claim.
 * The packet is shown only when the server's record has the message's conversation and sender.
 */
export function RedPacketItem(props: { session: Session; m: LocalMessage; own: boolean; senderName: string; showSender: boolean }) {
  const { session, m } = props;
  const { t } = useTranslation();
  const body = m.body as RedPacketBody;
  const d = usePacket(session, body.packetId);
  const [stage, setStage] = useState<'closed' | 'cover' | 'sheet'>('closed');
  const me = session.userId;
  const genuine = !d || (d.packet.conv === m.conv && d.packet.sender === m.sender);
  if (!genuine) return null;
  const mine = d?.claims.find((c) => c.user === me);
  const state = mine ? 'opened' : d?.packet.status === 'finished' ? 'finished' : d?.packet.status === 'expired' ? 'expired' : 'active';
  const label = state === 'opened' ? t('redpacket.opened') : state === 'finished' ? t('redpacket.finished') : state === 'expired' ? t('redpacket.expired') : t('redpacket.tapToOpen');
  const canOpen = state === 'active' && !(props.own && m.conv?.startsWith('d:'));
  return (
    <>
      <li className={`msg ${props.own ? 'own' : 'theirs'}`} data-testid="message" data-seq={m.seq ?? ''} data-state={m.state}>
        {props.showSender && !props.own && (
          <div className="msg-sender" aria-hidden="true">
            {props.senderName}
          </div>
        )}
        <button
          type="button"
          className={`redpacket-bubble ${state}`}
          data-testid="redpacket"
          data-packet={body.packetId}
          data-state={state}
          aria-label={`${t('redpacket.label')}: ${body.greeting || t('redpacket.defaultGreeting')} — ${label}`}
          onClick={() => setStage(canOpen ? 'cover' : 'sheet')}
        >
          <span className="rp-icon" aria-hidden="true">
            <Icon name="gift" size={28} />
          </span>
          <span className="rp-text">
            <span className="rp-greeting">{body.greeting || t('redpacket.defaultGreeting')}</span>
            <span className="rp-state">{label}</span>
          </span>
          <span className="rp-foot">
            {t('redpacket.label')} · {timeOfDay(m.time)}
          </span>
        </button>
      </li>
      {props.own &&
        d?.claims.map((c) => (
          <li key={`claim-${c.seq}`} className="system" data-testid="redpacket-notice" data-kind="claimed">
            {t('redpacket.someoneOpened', { name: session.directory.userName(c.user) })}
          </li>
        ))}
      {stage === 'cover' && (
        <OpenCover
          session={session}
          packetId={body.packetId}
          sender={props.senderName}
          greeting={body.greeting || t('redpacket.defaultGreeting')}
          onClose={() => setStage('closed')}
          onDone={() => setStage('sheet')}
        />
      )}
      {stage === 'sheet' && <ResultSheet session={session} packetId={body.packetId} senderName={props.senderName} greeting={body.greeting} onClose={() => setStage('closed')} />}
    </>
  );
}

/** The packet's cover with the round "open" button, which spins while the open request runs. */
function OpenCover(props: { session: Session; packetId: string; sender: string; greeting: string; onClose(): void; onDone(): void }) {
  const { t } = useTranslation();
  const [spinning, setSpinning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const open = async () => {
    setSpinning(true);
    setError(null);
    const started = Date.now();
    try {
      await props.session.wallet.openRedPacket(props.packetId);
    } catch (err) {
      setError(walletErrorText(err));
    }
    // Let the coin turn at least once (the animation is part of the feel, not a delay of the money).
    await new Promise((r) => setTimeout(r, Math.max(0, 600 - (Date.now() - started))));
    await props.session.redPackets.refresh(props.packetId);
    setSpinning(false);
    props.onDone();
  };
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-label={t('redpacket.from', { name: props.sender })} data-testid="redpacket-cover" onClick={props.onClose}>
      <div className="rp-cover" onClick={(e) => e.stopPropagation()}>
        <p className="rp-from">{t('redpacket.from', { name: props.sender })}</p>
        <p className="rp-cover-greeting">{props.greeting}</p>
        <button type="button" className={`rp-open${spinning ? ' spinning' : ''}`} disabled={spinning} onClick={() => void open()} data-testid="redpacket-open" aria-label={spinning ? t('redpacket.opening') : t('redpacket.open')}>
          {t('redpacket.open')}
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="button" className="link rp-close" onClick={props.onClose}>
          {t('redpacket.close')}
        </button>
      </div>
    </div>
  );
}

/** Every claim with its amount and time, best luck once finished, and what this user got. */
function ResultSheet(props: { session: Session; packetId: string; senderName: string; greeting: string; onClose(): void }) {
  const { session } = props;
  const { t } = useTranslation();
  const d = usePacket(session, props.packetId);
  const mine = d?.claims.find((c) => c.user === session.userId);
  const claimed = d ? d.claims.reduce((s, c) => s + c.amount, 0) : 0;
  return (
    <div className="overlay sheet-overlay" role="dialog" aria-modal="true" aria-label={t('redpacket.from', { name: props.senderName })} data-testid="redpacket-sheet" onClick={props.onClose}>
      <div className="rp-sheet" onClick={(e) => e.stopPropagation()}>
        <div className="rp-sheet-head">
          <p className="rp-from">{t('redpacket.from', { name: props.senderName })}</p>
          <p className="muted">{props.greeting || t('redpacket.defaultGreeting')}</p>
          {mine && (
            <p className="rp-got" data-testid="redpacket-got" data-fen={mine.amount}>
              {t('redpacket.youGot', { amount: yuan(mine.amount).replace(/^¥/, '') })}
            </p>
          )}
        </div>
        {d && (
          <>
            <p className="muted small" data-testid="redpacket-summary" data-status={d.packet.status}>
              {t('redpacket.claimsOf', { claimed: d.claims.length, count: d.packet.count, amount: yuan(claimed).replace(/^¥/, ''), total: yuan(d.packet.total).replace(/^¥/, '') })}
              {d.packet.status === 'expired' && ` · ${t('redpacket.expired')}`}
            </p>
            <ol className="rp-claims">
              {d.claims.map((c) => (
                <li key={c.seq} data-testid="redpacket-claim" data-user={c.user} data-fen={c.amount}>
                  <span className="rp-claim-name">{session.directory.userName(c.user)}</span>
                  <time className="muted small">{timeOfDay(c.at)}</time>
                  <strong>{yuan(c.amount)}</strong>
                  {d.bestLuck?.seq === c.seq && (
                    <span className="rp-best" data-testid="best-luck">
                      {t('redpacket.bestLuck')}
                    </span>
                  )}
                </li>
              ))}
            </ol>
          </>
        )}
        <button type="button" onClick={props.onClose} data-testid="redpacket-sheet-close">
          {t('redpacket.close')}
        </button>
      </div>
    </div>
  );
}

/** The grey notice of a `redpacket.status` message. */
export function RedPacketStatusNotice(props: { session: Session; m: LocalMessage }) {
  const { t } = useTranslation();
  const body = props.m.body as RedPacketStatusBody;
  const own = props.m.sender === props.session.userId;
  const name = props.session.directory.userName(props.m.sender);
  const text =
    body.status === 'finished'
      ? own
        ? t('redpacket.endedFinishedOwn')
        : t('redpacket.endedFinished', { name })
      : own
        ? t('redpacket.endedExpiredOwn', { amount: yuan(body.refunded).replace(/^¥/, '') })
        : t('redpacket.endedExpired', { name });
  return (
    <li className="system" data-testid="redpacket-notice" data-kind={body.status} data-seq={props.m.seq ?? ''}>
      {text}
    </li>
  );
}

/** The send dialog: split kind, amount in yuan (parsed without floating point), count, greeting, PIN. */
export function SendRedPacketDialog(props: { session: Session; conv: string | null; peer: string | null; group: boolean; onClose(): void }) {
  const { session } = props;
  const { t } = useTranslation();
  const [split, setSplit] = useState<'random' | 'equal'>('random');
  const [amount, setAmount] = useState('');
  const [count, setCount] = useState(props.group ? '3' : '1');
  const [greeting, setGreeting] = useState('');
  const [pin, setPin] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [clientMsgId] = useState(() => `rp${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
  const fen = parseYuan(amount);
  const n = props.group ? Number.parseInt(count, 10) : 1;
  const total = fen === null || !Number.isSafeInteger(n) || n < 1 ? null : split === 'equal' ? fen * n : fen;
  const send = async () => {
    if (fen === null || fen < 1 || total === null) return setError(t('wallet.err_bad_amount'));
    setBusy(true);
    setError(null);
    try {
      await session.wallet.sendRedPacket({
        ...(props.conv && props.group ? { conv: props.conv } : { to: props.peer! }),
        split: props.group ? split : 'random',
        amount: fen,
        count: n,
        greeting: greeting.trim() || t('redpacket.defaultGreeting'),
        pin: pin || undefined,
        clientMsgId,
      });
      props.onClose();
    } catch (err) {
      setError(walletErrorText(err));
      setPin('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-label={t('redpacket.sendTitle')} data-testid="redpacket-dialog" onClick={props.onClose}>
      <form className="rp-dialog" onClick={(e) => e.stopPropagation()} onSubmit={(e) => (e.preventDefault(), void send())}>
        <h2>{t('redpacket.sendTitle')}</h2>
        {props.group && (
          <fieldset className="rp-split">
            <legend>{t('redpacket.split')}</legend>
            <label>
              <input type="radio" name="split" checked={split === 'random'} onChange={() => setSplit('random')} data-testid="rp-split-random" /> {t('redpacket.random')}
            </label>
            <label>
              <input type="radio" name="split" checked={split === 'equal'} onChange={() => setSplit('equal')} data-testid="rp-split-equal" /> {t('redpacket.equal')}
            </label>
          </fieldset>
        )}
        <label>
          {split === 'equal' && props.group ? t('redpacket.each') : t('redpacket.total')}
          <input inputMode="decimal" autoComplete="off" placeholder="0.00" value={amount} onChange={(e) => setAmount(e.target.value)} data-testid="rp-amount" autoFocus />
        </label>
        {props.group && (
          <label>
            {t('redpacket.count')}
            <input inputMode="numeric" value={count} onChange={(e) => setCount(e.target.value.replace(/\D/g, ''))} data-testid="rp-count" />
          </label>
        )}
        <label>
          {t('redpacket.greeting')}
          <input maxLength={100} placeholder={t('redpacket.defaultGreeting')} value={greeting} onChange={(e) => setGreeting(e.target.value)} data-testid="rp-greeting" />
        </label>
        <label>
          {t('wallet.enterPin')}
          <input type="password" inputMode="numeric" autoComplete="off" maxLength={6} value={pin} onChange={(e) => setPin(e.target.value.replace(/\D/g, ''))} data-testid="rp-pin" />
        </label>
        <p className="rp-total" data-testid="rp-total" data-fen={total ?? ''}>
          {total === null ? '¥0.00' : yuan(total)}
        </p>
        {error && (
          <p className="error" role="alert" data-testid="rp-error">
            {error}
          </p>
        )}
        <div className="row">
          <button type="button" onClick={props.onClose}>
            {t('app.cancel')}
          </button>
          <button type="submit" className="primary rp-send" disabled={busy || total === null} data-testid="rp-send">
            {t('redpacket.send', { amount: total === null ? '0.00' : yuan(total).replace(/^¥/, '') })}
          </button>
        </div>
      </form>
    </div>
  );
}
