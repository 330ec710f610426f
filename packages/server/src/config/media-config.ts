import { z } from 'zod';

const MB = 1024 * 1024;

/** Media settings (`media` in the config file; MAGPIE_MEDIA_* and MAGPIE_S3_* in the environment). */
export const MediaConfigSchema = z.strictObject({
  /** Where media bytes live: 'local' (files under `dir`) or 's3' (any S3-compatible object store). */
  storage: z.enum(['local', 's3']).default('local'),
  /** Local storage and in-progress uploads; default `<dataDir>/media`. */
  dir: z.string().optional(),
  s3: z
    .strictObject({
      bucket: z.string().min(1),
      prefix: z.string().default('media/'),
      region: z.string().default('us-east-1'),
      /** URL of an S3-compatible server (MinIO, Ceph, Garage, R2…); unset for AWS S3. */
      endpoint: z.string().optional(),
      forcePathStyle: z.boolean().default(true),
      /** Unset: the AWS SDK's default chain (AWS_ACCESS_KEY_ID…, shared config, instance role). */
      accessKeyId: z.string().optional(),
      secretAccessKey: z.string().optional(),
    })
    .optional(),
  /** Largest upload per message kind, in bytes. */
  maxBytes: z
    .strictObject({
      image: z.number().int().min(1).default(30 * MB),
      video: z.number().int().min(1).default(1024 * MB),
      voice: z.number().int().min(1).default(20 * MB),
      file: z.number().int().min(1).default(1024 * MB),
    })
    .prefault({}),
  /** Longest edge of the two image thumbnails, in pixels. */
  thumbSmall: z.number().int().min(16).max(4096).default(320),
  thumbLarge: z.number().int().min(16).max(8192).default(1280),
  /** Uploads no message references are deleted this long after they started (and unfinished tus uploads expire). */
  gcAfterMs: z.number().int().min(1000).default(24 * 3600 * 1000),
  gcIntervalMs: z.number().int().min(100).default(10 * 60 * 1000),
  /** Lifetime of signed media URLs (`GET /api/media/:id/url`). */
  urlTtlMs: z.number().int().min(1000).default(15 * 60 * 1000),
  /** Key that signs media URLs; set the same value on every node of a cluster. Unset: random per process. */
  urlSecret: z.string().min(16).optional(),
  /** ffmpeg binary for video posters and durations; 'off' disables it. ffprobe is looked up beside it. */
  ffmpeg: z.string().default('ffmpeg'),
  /**
   * Where a location message's "open in map" link goes: an http(s) URL with `{lat}`, `{lng}`
   * and optionally `{label}` (URL-encoded) in it; '' shows no link. Clients draw no map tiles.
   */
  mapUrlTemplate: z
    .string()
    .max(500)
    .refine((v) => v === '' || (/^https?:\/\/\S+$/.test(v) && v.includes('{lat}') && v.includes('{lng}')), "an http(s) URL containing {lat} and {lng}, or ''")
    .default('https://www.openstreetmap.org/?mlat={lat}&mlon={lng}#map=16/{lat}/{lng}'),
});

export type MediaConfig = z.infer<typeof MediaConfigSchema>;

type Raw = Record<string, unknown>;
const media = (c: Raw): Raw => (c.media = { ...(c.media as Raw) }) as Raw;
const s3 = (c: Raw): Raw => {
  const m = media(c);
  return (m.s3 = { ...(m.s3 as Raw) }) as Raw;
};
const max = (c: Raw): Raw => {
  const m = media(c);
  return (m.maxBytes = { ...(m.maxBytes as Raw) }) as Raw;
};

export const MEDIA_ENV: Record<string, (c: Raw, v: string) => void> = {
  MAGPIE_MEDIA_STORAGE: (c, v) => (media(c).storage = v),
  MAGPIE_MEDIA_DIR: (c, v) => (media(c).dir = v),
  MAGPIE_MEDIA_MAX_IMAGE_BYTES: (c, v) => (max(c).image = Number(v)),
  MAGPIE_MEDIA_MAX_VIDEO_BYTES: (c, v) => (max(c).video = Number(v)),
  MAGPIE_MEDIA_MAX_VOICE_BYTES: (c, v) => (max(c).voice = Number(v)),
  MAGPIE_MEDIA_MAX_FILE_BYTES: (c, v) => (max(c).file = Number(v)),
  MAGPIE_MEDIA_GC_AFTER_MS: (c, v) => (media(c).gcAfterMs = Number(v)),
  MAGPIE_MEDIA_GC_INTERVAL_MS: (c, v) => (media(c).gcIntervalMs = Number(v)),
  MAGPIE_MEDIA_URL_TTL_MS: (c, v) => (media(c).urlTtlMs = Number(v)),
  MAGPIE_MEDIA_URL_SECRET: (c, v) => (media(c).urlSecret = v),
  MAGPIE_FFMPEG: (c, v) => (media(c).ffmpeg = v),
  MAGPIE_MAP_URL_TEMPLATE: (c, v) => (media(c).mapUrlTemplate = v),
  MAGPIE_S3_BUCKET: (c, v) => (s3(c).bucket = v),
  MAGPIE_S3_PREFIX: (c, v) => (s3(c).prefix = v),
  MAGPIE_S3_REGION: (c, v) => (s3(c).region = v),
  MAGPIE_S3_ENDPOINT: (c, v) => (s3(c).endpoint = v),
  MAGPIE_S3_FORCE_PATH_STYLE: (c, v) => (s3(c).forcePathStyle = v === 'true' || v === '1'),
  MAGPIE_S3_ACCESS_KEY_ID: (c, v) => (s3(c).accessKeyId = v),
  MAGPIE_S3_SECRET_ACCESS_KEY: (c, v) => (s3(c).secretAccessKey = v),
};
