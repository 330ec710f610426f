import { lifecyclePreview } from './lifecycle.ts';
import { z } from 'zod';
import { registerMessageKind } from './kinds.ts';

/**
 * Rich message kinds (image, video, voice, file, location, card). Every body carries
 * `fallback`: a short text a client shows when it does not know the kind (a newer client's
 * kind reaching an older one) and that push and conversation previews may use.
 *
 * Media kinds reference a completed upload (`upload`, from the tus endpoint). The server
 * checks it on send (it exists, is complete, the sender uploaded it or may read it, its
 * content matches the kind) and overwrites the fields it measured itself (size, MIME,
 * dimensions, duration, placeholder, thumbnails), so receivers can trust them.
 */

/** The kinds that reference an upload, and the upload kind each accepts. */
export const MEDIA_KINDS = ['image', 'video', 'voice', 'file'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

export const UploadId = z.string().regex(/^up_[A-Za-z0-9_-]{8,64}$/, 'an upload id (up_…)');
export const Fallback = z.string().min(1).max(500);

const Dim = z.number().int().min(1).max(100_000);
const Mime = z.string().min(3).max(127);
const Size = z.number().int().nonnegative();
/** Seconds, to the millisecond. */
const Duration = z.number().nonnegative().max(7 * 24 * 3600);

/** A thumbnail the server made: fetch it as `GET /api/media/:upload?variant=<name>`. */
export const MediaVariant = z.strictObject({ name: z.enum(['small', 'large', 'poster']), width: Dim, height: Dim, mime: Mime });
export type MediaVariant = z.infer<typeof MediaVariant>;

const mediaFields = { fallback: Fallback, upload: UploadId, mime: Mime.optional(), size: Size.optional() };

export const ImageBody = z.strictObject({
  ...mediaFields,
  caption: z.string().max(4000).optional(),
  width: Dim.optional(),
  height: Dim.optional(),
  /** ThumbHash of the image, base64: a blurred preview to draw before any byte is loaded. */
  placeholder: z.string().max(100).optional(),
  animated: z.boolean().optional(),
  variants: z.array(MediaVariant).max(4).optional(),
});
export const VideoBody = z.strictObject({
  ...mediaFields,
  caption: z.string().max(4000).optional(),
  width: Dim.optional(),
  height: Dim.optional(),
  duration: Duration.optional(),
  placeholder: z.string().max(100).optional(),
  variants: z.array(MediaVariant).max(4).optional(),
});
export const VoiceBody = z.strictObject({
  ...mediaFields,
  duration: Duration.optional(),
  /** Loudness samples 0–255 the recorder measured, for drawing the waveform. */
  waveform: z.array(z.number().int().min(0).max(255)).max(256).optional(),
});
export const FileBody = z.strictObject({ ...mediaFields, name: z.string().min(1).max(255).optional() });
export const LocationBody = z.strictObject({
  fallback: Fallback,
  lat: z.number().min(-90).max(90),
  lng: z.number().min(-180).max(180),
  label: z.string().max(200).optional(),
  address: z.string().max(500).optional(),
});
/** A user or group to add: the client opens "add friend" or "join group". */
export const CardBody = z.strictObject({
  fallback: Fallback,
  card: z.enum(['user', 'group']),
  id: z.string().min(1).max(128),
  name: z.string().max(64).optional(),
  avatar: z.string().max(512).optional(),
});

export type ImageBody = z.infer<typeof ImageBody>;
export type VideoBody = z.infer<typeof VideoBody>;
export type VoiceBody = z.infer<typeof VoiceBody>;
export type FileBody = z.infer<typeof FileBody>;
export type LocationBody = z.infer<typeof LocationBody>;
export type CardBody = z.infer<typeof CardBody>;
export type MediaBody = ImageBody | VideoBody | VoiceBody | FileBody;

registerMessageKind('image', ImageBody);
registerMessageKind('video', VideoBody);
registerMessageKind('voice', VoiceBody);
registerMessageKind('file', FileBody);
registerMessageKind('location', LocationBody);
registerMessageKind('card', CardBody);

export function isMediaKind(kind: string): kind is MediaKind {
  return (MEDIA_KINDS as readonly string[]).includes(kind);
}

/** `m:ss` (or `h:mm:ss`) of a duration in seconds. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const LABELS = {
  en: { image: 'Image', video: 'Video', voice: 'Voice', file: 'File', location: 'Location', card: 'Contact card' },
  zh: { image: '图片', video: '视频', voice: '语音', file: '文件', location: '位置', card: '名片' },
} as const;

/**
 * A one-line preview of a message for lists and push: text as is, "[Image]", "[Voice] 0:12",
 * "[File] report.pdf", …; a kind this build does not know shows the body's `fallback`.
 */
export function messagePreview(kind: string, body: unknown, locale = 'en'): string {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const t = LABELS[locale.toLowerCase().startsWith('zh') ? 'zh' : 'en'];
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const lifecycle = lifecyclePreview(kind, body, locale.toLowerCase().startsWith('zh'));
  if (lifecycle !== undefined) return lifecycle;
  switch (kind) {
    case 'text':
      return str(b.text);
    case 'image':
    case 'video': {
      const label = `[${t[kind]}]`;
      const caption = str(b.caption).trim();
      const dur = kind === 'video' && typeof b.duration === 'number' ? ` ${formatDuration(b.duration)}` : '';
      return caption ? `${label}${dur} ${caption}` : `${label}${dur}`;
    }
    case 'voice':
      return typeof b.duration === 'number' ? `[${t.voice}] ${formatDuration(b.duration)}` : `[${t.voice}]`;
    case 'file':
      return b.name ? `[${t.file}] ${str(b.name)}` : `[${t.file}]`;
    case 'location':
      return b.label ? `[${t.location}] ${str(b.label)}` : `[${t.location}]`;
    case 'card':
      return b.name ? `[${t.card}] ${str(b.name)}` : `[${t.card}]`;
    default:
      return str(b.fallback) || str(b.text) || `[${kind}]`;
  }
}
