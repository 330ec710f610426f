import { useEffect, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { formatBytes, formatDuration, mapUrl, type CardBody, type FileBody, type ImageBody, type LocalMessage, type LocationBody, type VideoBody, type VoiceBody } from '@magpie/sdk';
import type { Session } from '../session.ts';
import { navigate, chatPath } from '../router.ts';
import { useVM } from '../hooks.ts';
import { Avatar } from '../screens/common.tsx';
import { fit, placeholderUrl, useClientConfig, useMediaUrl } from './media-urls.ts';
import { Icon } from '../screens/icons.tsx';

/** The kinds drawn as media rather than as text. */
export const RICH_KINDS = new Set(['image', 'video', 'voice', 'file', 'location', 'card']);

interface Props {
  session: Session;
  message: LocalMessage;
  /** Own media sent from this device: the picked file, shown until the server's copy loads. */
  localUrl: string | null;
  onOpenImage: (clientMsgId: string) => void;
}

export function MessageMedia(props: Props) {
  const { message } = props;
  switch (message.kind) {
    case 'image':
      return <ImageView {...props} body={message.body as ImageBody} />;
    case 'video':
      return <VideoView {...props} body={message.body as VideoBody} />;
    case 'voice':
      return <VoicePlayer session={props.session} body={message.body as VoiceBody} localUrl={props.localUrl} />;
    case 'file':
      return <FileCard session={props.session} body={message.body as FileBody} />;
    case 'location':
      return <LocationCard session={props.session} body={message.body as LocationBody} />;
    case 'card':
      return <ContactCard session={props.session} body={message.body as CardBody} />;
    default:
      return null;
  }
}

/** Placeholder (ThumbHash) at once, the local file for own messages, then the small thumbnail. */
function ImageView(props: Props & { body: ImageBody }) {
  const { body, session } = props;
  const { t } = useTranslation();
  const small = body.variants?.some((v) => v.name === 'small');
  const url = useMediaUrl(session.media, body.upload, small ? 'small' : 'original');
  const [loaded, setLoaded] = useState(false);
  const ph = useMemo(() => placeholderUrl(body.placeholder), [body.placeholder]);
  const box = fit(body.width, body.height, 240);
  return (
    <figure className="media-figure">
      <button
        type="button"
        className="media-image"
        style={{ width: box.width, height: box.height, backgroundImage: ph ? `url("${ph}")` : undefined }}
        onClick={() => props.onOpenImage(props.message.clientMsgId)}
        aria-label={t('media.openImage')}
        data-testid="image"
        data-placeholder={ph ? 'yes' : 'no'}
      >
        {props.localUrl && !loaded && <img src={props.localUrl} alt="" data-testid="image-local" />}
        {url && <img src={url} alt={body.caption ?? t('media.image')} onLoad={() => setLoaded(true)} className={loaded ? 'loaded' : 'loading'} data-testid="image-thumb" data-loaded={loaded ? 'yes' : 'no'} />}
      </button>
      {body.caption && <figcaption>{body.caption}</figcaption>}
    </figure>
  );
}

function VideoView(props: Props & { body: VideoBody }) {
  const { body, session } = props;
  const { t } = useTranslation();
  const hasPoster = body.variants?.some((v) => v.name === 'poster');
  const poster = useMediaUrl(session.media, hasPoster ? body.upload : undefined, 'poster');
  const src = useMediaUrl(session.media, body.upload, 'original');
  const box = fit(body.width, body.height, 280);
  return (
    <figure className="media-figure">
      <video className="media-video" controls preload="metadata" playsInline width={box.width} height={box.height} src={src ?? props.localUrl ?? undefined} poster={poster ?? placeholderUrl(body.placeholder) ?? undefined} aria-label={t('media.video')} data-testid="video" />
      <figcaption>
        {body.duration !== undefined && <span className="muted">{formatDuration(body.duration)} · </span>}
        {body.caption}
      </figcaption>
    </figure>
  );
}

const SPEEDS = [1, 1.5, 2] as const;

/** Play/pause, the recorded waveform (filled as it plays), elapsed/total time, and 1×/1.5×/2×. */
export function VoicePlayer(props: { session: Session; body: VoiceBody; localUrl: string | null }) {
  const { body } = props;
  const { t } = useTranslation();
  const src = useMediaUrl(props.session.media, body.upload, 'original');
  const audio = useRef<HTMLAudioElement>(null);
  const [playing, setPlaying] = useState(false);
  const [pos, setPos] = useState(0);
  const [speed, setSpeed] = useState<(typeof SPEEDS)[number]>(1);
  const [total, setTotal] = useState(body.duration ?? 0);
  useEffect(() => {
    if (audio.current) audio.current.playbackRate = speed;
  }, [speed]);
  const bars = useMemo(() => resample(body.waveform ?? [], 40), [body.waveform]);
  const progress = total > 0 ? Math.min(1, pos / total) : 0;
  const toggle = () => {
    const a = audio.current;
    if (!a) return;
    if (a.paused) void a.play().catch(() => setPlaying(false));
    else a.pause();
  };
  return (
    <div className="voice" data-testid="voice-player" data-playing={playing ? 'yes' : 'no'}>
      <button type="button" className="icon-button voice-play" onClick={toggle} aria-label={playing ? t('media.pause') : t('media.play')} data-testid="voice-play" disabled={!src && !props.localUrl}>
        <Icon name={playing ? 'pause' : 'play'} />
      </button>
      <span className="waveform" aria-hidden="true">
        {bars.map((v, i) => (
          <span key={i} className={i / bars.length < progress ? 'bar played' : 'bar'} style={{ height: `${Math.max(12, (v / 255) * 100)}%` }} />
        ))}
      </span>
      <span className="voice-time" data-testid="voice-time">
        {formatDuration(playing || pos > 0 ? pos : total)}
      </span>
      <button type="button" className="small voice-speed" onClick={() => setSpeed(SPEEDS[(SPEEDS.indexOf(speed) + 1) % SPEEDS.length]!)} aria-label={t('media.speed', { speed })} data-testid="voice-speed" data-speed={speed}>
        {speed}×
      </button>
      <audio
        ref={audio}
        src={src ?? props.localUrl ?? undefined}
        preload="metadata"
        onPlay={() => setPlaying(true)}
        onPause={() => setPlaying(false)}
        onEnded={() => {
          setPlaying(false);
          setPos(0);
        }}
        onTimeUpdate={(e) => setPos(e.currentTarget.currentTime)}
        onLoadedMetadata={(e) => {
          const d = e.currentTarget.duration;
          if (Number.isFinite(d) && d > 0) setTotal(d);
          e.currentTarget.playbackRate = speed;
        }}
        data-testid="voice-audio"
      />
    </div>
  );
}

function resample(values: number[], n: number): number[] {
  if (values.length === 0) return Array.from({ length: n }, () => 40);
  return Array.from({ length: n }, (_, i) => {
    const from = Math.floor((i * values.length) / n);
    const to = Math.max(from + 1, Math.floor(((i + 1) * values.length) / n));
    let max = 0;
    for (let j = from; j < to && j < values.length; j++) max = Math.max(max, values[j]!);
    return max;
  });
}

function FileCard(props: { session: Session; body: FileBody }) {
  const { body } = props;
  const { t } = useTranslation();
  const url = useMediaUrl(props.session.media, body.upload, 'original');
  const name = body.name ?? t('media.file');
  return (
    <div className="file-card" data-testid="file-card">
      <Icon name="file" size={32} />
      <span className="file-main">
        <span className="file-name" title={name}>
          {name}
        </span>
        <span className="muted file-size">{body.size !== undefined ? formatBytes(body.size) : ''}</span>
      </span>
      {url ? (
        <a className="icon-button" href={url} download={name} aria-label={t('media.download', { name })} data-testid="file-download">
          <Icon name="download" />
        </a>
      ) : (
        <span className="icon-button" aria-hidden="true">
          <Icon name="clock" />
        </span>
      )}
    </div>
  );
}

/** Coordinates, label and the operator's map link: no map tiles are loaded. */
function LocationCard(props: { session: Session; body: LocationBody }) {
  const { body } = props;
  const { t } = useTranslation();
  const cfg = useClientConfig(props.session);
  const link = cfg ? mapUrl(cfg.media.mapUrlTemplate, body) : null;
  const coords = `${body.lat.toFixed(5)}, ${body.lng.toFixed(5)}`;
  return (
    <div className="location-card" data-testid="location-card">
      <Icon name="mapPin" size={32} />
      <span className="file-main">
        <span className="file-name">{body.label || t('media.location')}</span>
        {body.address && <span className="muted">{body.address}</span>}
        <span className="muted coords" data-testid="location-coords">
          {coords}
        </span>
        {link && (
          <a href={link} target="_blank" rel="noopener noreferrer" data-testid="location-link">
            {t('media.openMap')}
          </a>
        )}
      </span>
    </div>
  );
}

/** A user or group to add: "Add friend" / "Join group" (or "Message" / "Open" when already there). */
function ContactCard(props: { session: Session; body: CardBody }) {
  const { body, session } = props;
  const { t } = useTranslation();
  const contacts = useVM(session.contacts);
  const [note, setNote] = useState<string | null>(null);
  const isMe = body.card === 'user' && body.id === session.userId;
  const friend = body.card === 'user' && contacts.friends.some((f) => f.user.id === body.id);
  const convs = useVM(session.conversations);
  const member = body.card === 'group' && convs.rows.some((r) => r.conv === body.id);
  const name = body.name || (body.card === 'user' ? session.directory.userName(body.id) : session.directory.groupName(body.id));
  const act = async () => {
    try {
      if (body.card === 'user') {
        if (friend) return navigate(`/dm/${encodeURIComponent(body.id)}`);
        await session.social.requestFriend(body.id);
        void session.contacts.reload();
        setNote(t('media.requestSent'));
      } else {
        if (member) return navigate(chatPath(body.id));
        const r = await session.groups.join(body.id);
        if (r.joined) navigate(chatPath(body.id));
        else setNote(t('media.joinAsked'));
      }
    } catch (err) {
      setNote(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <div className="contact-card" data-testid="contact-card" data-card={body.card}>
      <Avatar name={name} id={body.id} group={body.card === 'group'} />
      <span className="file-main">
        <span className="file-name">{name}</span>
        <span className="muted">{body.card === 'user' ? t('media.contactCard') : t('media.groupCard')}</span>
        {note && (
          <span className="muted" role="status" data-testid="card-note">
            {note}
          </span>
        )}
      </span>
      {!isMe && (
        <button type="button" className="small primary" onClick={() => void act()} data-testid="card-action">
          {body.card === 'user' ? (friend ? t('media.message') : t('media.addFriend')) : member ? t('media.openGroup') : t('media.joinGroup')}
        </button>
      )}
    </div>
  );
}
