import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { formatDuration } from '@magpie/sdk';
import { Icon } from '../screens/icons.tsx';

export interface VoiceNote {
  file: File;
  /** Seconds. */
  duration: number;
  /** Loudness 0–255, one value per 100 ms (at most 256: longer notes are folded). */
  waveform: number[];
}

/** Hold this long on the microphone button to record while held; a shorter press toggles. */
const HOLD_MS = 350;
const SAMPLE_MS = 100;

function preferredType(): string | undefined {
  for (const t of ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4']) if (typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported(t)) return t;
  return undefined;
}

/** Fold loudness samples into at most n values (the maximum of each run). */
function fold(values: number[], n: number): number[] {
  if (values.length <= n) return values;
  return Array.from({ length: n }, (_, i) => {
    const from = Math.floor((i * values.length) / n);
    const to = Math.floor(((i + 1) * values.length) / n);
    let max = 0;
    for (let j = from; j < to; j++) max = Math.max(max, values[j]!);
    return max;
  });
}

/**
 * The microphone button: tap to start and tap "send" (or "cancel") to finish, or hold to
 * record and release to send. Records with MediaRecorder (Opus in WebM where the browser has
 * it) while an AnalyserNode measures the loudness for the waveform.
 */
export function VoiceRecorder(props: { onRecorded(note: VoiceNote): void; onError(message: string): void; disabled?: boolean }) {
  const { t } = useTranslation();
  const [recording, setRecording] = useState<{ started: number; levels: number[] } | null>(null);
  const [, tick] = useState(0);
  const rec = useRef<{ recorder: MediaRecorder; stream: MediaStream; ctx: AudioContext; timer: ReturnType<typeof setInterval>; chunks: Blob[]; levels: number[]; started: number; send: boolean } | null>(null);
  const press = useRef<{ at: number; hold: boolean } | null>(null);
  const starting = useRef<Promise<void> | null>(null);

  useEffect(() => () => stop(false), []); // eslint-disable-line react-hooks/exhaustive-deps

  const start = async () => {
    if (rec.current) return;
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      props.onError(t('media.micDenied'));
      return;
    }
    const type = preferredType();
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const buf = new Uint8Array(analyser.fftSize);
    const levels: number[] = [];
    const started = Date.now();
    const timer = setInterval(() => {
      analyser.getByteTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += (v - 128) * (v - 128);
      levels.push(Math.min(255, Math.round(Math.sqrt(sum / buf.length) * 4)));
      tick((n) => n + 1);
    }, SAMPLE_MS);
    const r = { recorder, stream, ctx, timer, chunks: [] as Blob[], levels, started, send: false };
    rec.current = r;
    recorder.ondataavailable = (e) => e.data.size > 0 && r.chunks.push(e.data);
    recorder.onstop = () => {
      if (!r.send) return;
      const mime = recorder.mimeType || type || 'audio/webm';
      const ext = mime.includes('ogg') ? 'ogg' : mime.includes('mp4') ? 'm4a' : 'webm';
      const duration = Math.round(Date.now() - r.started) / 1000;
      if (duration < 0.3) return; // a slip of the finger
      props.onRecorded({ file: new File(r.chunks, `voice-${new Date(r.started).toISOString().replace(/[:.]/g, '-')}.${ext}`, { type: mime.split(';')[0] }), duration, waveform: fold(r.levels, 256) });
    };
    recorder.start(250);
    setRecording({ started, levels });
  };

  function stop(send: boolean): void {
    const r = rec.current;
    if (!r) return;
    rec.current = null;
    r.send = send;
    clearInterval(r.timer);
    if (r.recorder.state !== 'inactive') r.recorder.stop();
    for (const tr of r.stream.getTracks()) tr.stop();
    void r.ctx.close().catch(() => undefined);
    setRecording(null);
  }

  const onDown = (e: React.PointerEvent) => {
    if (props.disabled || e.button !== 0) return;
    if (rec.current) return; // a tap while recording: handled on pointer up
    press.current = { at: Date.now(), hold: false };
    starting.current = start();
  };
  const onUp = async () => {
    const p = press.current;
    press.current = null;
    if (!p) {
      // Recording in tap mode: this tap finishes and sends.
      if (rec.current) stop(true);
      return;
    }
    // Held long enough: release sends. A quick tap leaves it recording (tap again or press send).
    // Measured before waiting for the microphone, which may take a while to open.
    const held = Date.now() - p.at >= HOLD_MS;
    await starting.current;
    if (held) stop(true);
  };

  const elapsed = recording ? (Date.now() - recording.started) / 1000 : 0;
  return (
    <>
      {recording && (
        <div className="recording" role="status" data-testid="recording">
          <span className="rec-dot" aria-hidden="true" />
          <span className="voice-time">{formatDuration(elapsed)}</span>
          <span className="waveform live" aria-hidden="true">
            {recording.levels.slice(-30).map((v, i) => (
              <span key={i} className="bar played" style={{ height: `${Math.max(10, (v / 255) * 100)}%` }} />
            ))}
          </span>
          <button type="button" className="icon-button" onClick={() => stop(false)} aria-label={t('media.cancelRecording')} data-testid="record-cancel">
            <Icon name="trash" />
          </button>
        </div>
      )}
      <button
        type="button"
        className={`icon-button mic${recording ? ' active' : ''}`}
        aria-label={recording ? t('media.stopAndSend') : t('media.record')}
        title={recording ? t('media.stopAndSend') : t('media.recordHint')}
        aria-pressed={!!recording}
        disabled={props.disabled}
        onPointerDown={onDown}
        onPointerUp={() => void onUp()}
        onKeyDown={(e) => {
          if (e.key !== 'Enter' && e.key !== ' ') return;
          e.preventDefault();
          if (rec.current) stop(true);
          else void start();
        }}
        data-testid="record"
      >
        <Icon name={recording ? 'send' : 'mic'} />
      </button>
    </>
  );
}
