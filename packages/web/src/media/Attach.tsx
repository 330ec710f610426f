import { useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { formatBytes, type ChatUploadItem, type ChatViewModel } from '@magpie/sdk';
import type { Session } from '../session.ts';
import { useVM } from '../hooks.ts';
import { Avatar } from '../screens/common.tsx';
import { Icon } from '../screens/icons.tsx';
import { fit, kindOfFile } from './media-urls.ts';

/** Send picked, pasted or dropped files: images and videos as such, anything else as a file. */
export async function sendFiles(session: Session, vm: ChatViewModel, files: Iterable<File>): Promise<void> {
  const cfg = await session.clientConfig().catch(() => null);
  for (const file of files) {
    const kind = kindOfFile(file);
    vm.sendMedia({ file, kind, name: file.name || `${kind}`, size: file.size }, cfg?.media.maxBytes[kind]);
  }
}

type Panel = null | 'menu' | 'location' | 'card';

/** The attach button: photos/videos/files, location, contact or group card. */
export function AttachMenu(props: { session: Session; vm: ChatViewModel; disabled?: boolean }) {
  const { session, vm } = props;
  const { t } = useTranslation();
  const [panel, setPanel] = useState<Panel>(null);
  const input = useRef<HTMLInputElement>(null);
  const [loc, setLoc] = useState<{ lat: number; lng: number; accuracy: number } | null>(null);
  const [label, setLabel] = useState('');
  const [problem, setProblem] = useState<string | null>(null);

  const locate = () => {
    setPanel('location');
    setLoc(null);
    setProblem(null);
    if (!('geolocation' in navigator)) return setProblem(t('media.noGeolocation'));
    navigator.geolocation.getCurrentPosition(
      (p) => setLoc({ lat: p.coords.latitude, lng: p.coords.longitude, accuracy: p.coords.accuracy }),
      (err) => setProblem(err.code === err.PERMISSION_DENIED ? t('media.geoDenied') : t('media.geoFailed')),
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 60_000 },
    );
  };

  // The panels sit inside the composer's <form>: no nested form, plain buttons.
  const shareLocation = () => {
    if (!loc) return;
    void vm.sendLocation({ lat: loc.lat, lng: loc.lng, ...(label.trim() ? { label: label.trim() } : {}) });
    setPanel(null);
    setLabel('');
  };

  return (
    <div className="attach">
      <input
        ref={input}
        type="file"
        multiple
        hidden
        onChange={(e) => {
          const files = [...(e.currentTarget.files ?? [])];
          e.currentTarget.value = '';
          setPanel(null);
          void sendFiles(session, vm, files);
        }}
        data-testid="attach-input"
      />
      <button type="button" className="icon-button" aria-label={t('media.attach')} aria-expanded={panel !== null} aria-haspopup="menu" disabled={props.disabled} onClick={() => setPanel(panel ? null : 'menu')} data-testid="attach">
        <Icon name="paperclip" />
      </button>
      {panel === 'menu' && (
        <ul className="attach-menu" role="menu" onKeyDown={(e) => e.key === 'Escape' && setPanel(null)}>
          <li role="none">
            <button type="button" role="menuitem" onClick={() => input.current?.click()} data-testid="attach-file" autoFocus>
              <Icon name="image" /> {t('media.photoOrFile')}
            </button>
          </li>
          <li role="none">
            <button type="button" role="menuitem" onClick={locate} data-testid="attach-location">
              <Icon name="mapPin" /> {t('media.location')}
            </button>
          </li>
          <li role="none">
            <button type="button" role="menuitem" onClick={() => setPanel('card')} data-testid="attach-card">
              <Icon name="userPlus" /> {t('media.card')}
            </button>
          </li>
        </ul>
      )}
      {panel === 'location' && (
        <div className="attach-panel" role="dialog" aria-label={t('media.shareLocation')} data-testid="location-panel">
          <h3>{t('media.shareLocation')}</h3>
          {problem && <p role="alert">{problem}</p>}
          {!problem && !loc && <p className="muted">{t('media.locating')}</p>}
          {loc && (
            <div className="location-form">
              <p className="coords" data-testid="location-found">
                {loc.lat.toFixed(5)}, {loc.lng.toFixed(5)} <span className="muted">(±{Math.round(loc.accuracy)} m)</span>
              </p>
              <label>
                {t('media.placeName')}
                <input
                  value={label}
                  maxLength={200}
                  onChange={(e) => setLabel(e.target.value)}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter') {
                      e.preventDefault();
                      shareLocation();
                    }
                  }}
                  placeholder={t('media.placeNameHint')}
                  data-testid="location-label"
                />
              </label>
              <div className="row-actions">
                <button type="button" onClick={() => setPanel(null)}>
                  {t('app.cancel')}
                </button>
                <button type="button" className="primary" onClick={shareLocation} data-testid="location-send">
                  {t('chat.send')}
                </button>
              </div>
            </div>
          )}
          {!loc && (
            <button type="button" onClick={() => setPanel(null)}>
              {t('app.cancel')}
            </button>
          )}
        </div>
      )}
      {panel === 'card' && <CardPicker session={session} vm={vm} onDone={() => setPanel(null)} />}
    </div>
  );
}

function CardPicker(props: { session: Session; vm: ChatViewModel; onDone(): void }) {
  const { session, vm } = props;
  const { t } = useTranslation();
  const contacts = useVM(session.contacts);
  const convs = useVM(session.conversations);
  const groups = convs.rows.filter((r) => r.kind !== 'direct');
  const pick = (card: 'user' | 'group', id: string, name: string) => {
    void vm.sendCard({ card, id, name });
    props.onDone();
  };
  return (
    <div className="attach-panel card-picker" role="dialog" aria-label={t('media.pickCard')} data-testid="card-picker" onKeyDown={(e) => e.key === 'Escape' && props.onDone()}>
      <h3>{t('media.pickCard')}</h3>
      <ul className="rows">
        {contacts.friends.map((f) => {
          const name = f.user.nickname || f.user.username;
          return (
            <li key={f.user.id}>
              <button type="button" className="row" onClick={() => pick('user', f.user.id, name)} data-testid="card-friend" data-user={f.user.id}>
                <Avatar name={name} id={f.user.id} size={32} /> <span className="row-title">{name}</span>
              </button>
            </li>
          );
        })}
        {groups.map((g) => (
          <li key={g.conv}>
            <button type="button" className="row" onClick={() => pick('group', g.conv, g.title)} data-testid="card-group" data-conv={g.conv}>
              <Avatar name={g.title} id={g.conv} group size={32} /> <span className="row-title">{g.title}</span>
            </button>
          </li>
        ))}
      </ul>
      {contacts.friends.length === 0 && groups.length === 0 && <p className="muted">{t('media.noCards')}</p>}
      <button type="button" onClick={props.onDone}>
        {t('app.cancel')}
      </button>
    </div>
  );
}

/** A media message on its way: the local file (or its name), progress, pause/resume and cancel. */
export function UploadBubble(props: { item: ChatUploadItem; vm: ChatViewModel }) {
  const { item, vm } = props;
  const { t } = useTranslation();
  const pct = item.total > 0 ? Math.floor((item.sent / item.total) * 100) : 0;
  const box = fit(undefined, undefined, 240);
  return (
    <li className="msg own" data-testid="upload" data-kind={item.kind} data-state={item.state} data-stalled={item.stalled ? 'yes' : 'no'}>
      <div className="bubble">
        {item.kind === 'image' && item.localUrl ? (
          <img className="media-local" src={item.localUrl} alt={item.name} style={{ maxWidth: box.width, maxHeight: box.height }} data-testid="upload-preview" />
        ) : item.kind === 'video' && item.localUrl ? (
          <video className="media-video" src={item.localUrl} muted playsInline width={box.width} data-testid="upload-preview" />
        ) : (
          <div className="file-card">
            <Icon name={item.kind === 'voice' ? 'mic' : 'file'} size={28} />
            <span className="file-main">
              <span className="file-name">{item.name}</span>
              <span className="muted">{formatBytes(item.size)}</span>
            </span>
          </div>
        )}
        <div className="upload-row">
          <progress max={100} value={pct} aria-label={t('media.uploadProgress', { name: item.name })} data-testid="upload-progress" />
          <span className="muted upload-text" role="status">
            {item.state === 'failed'
              ? t('media.uploadFailed', { reason: item.error ?? '' })
              : item.stalled
                ? t('media.waitingForNetwork')
                : item.state === 'paused'
                  ? t('media.paused', { pct })
                  : item.state === 'sending'
                    ? t('status.sending')
                    : `${pct}%`}
          </span>
          {(item.state === 'uploading' || (item.state === 'paused' && !item.stalled)) && (
            <button type="button" className="icon-button" onClick={() => (item.state === 'paused' ? vm.resumeUpload(item.key) : vm.pauseUpload(item.key))} aria-label={item.state === 'paused' ? t('media.resume') : t('media.pauseUpload')} data-testid="upload-pause">
              <Icon name={item.state === 'paused' ? 'play' : 'pause'} size={16} />
            </button>
          )}
          {item.state !== 'sending' && (
            <button type="button" className="icon-button" onClick={() => void vm.cancelUpload(item.key)} aria-label={item.state === 'failed' ? t('media.remove') : t('media.cancelUpload')} data-testid="upload-cancel">
              <Icon name="close" size={16} />
            </button>
          )}
        </div>
      </div>
    </li>
  );
}
