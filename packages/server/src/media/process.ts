import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MagpieError, type MediaKind } from '@magpie/protocol';
import { fileTypeFromFile } from 'file-type';
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import type { MediaMeta } from './media-store.ts';
import { ffprobeOf } from './ffmpeg.ts';

const run = promisify(execFile);

/** Image formats sharp decodes and browsers show. */
const IMAGE_MIMES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/tiff']);

/** A thumbnail or poster in memory (tens of KB), before it is stored content-addressed. */
export interface Variant {
  name: 'small' | 'large' | 'poster';
  width: number;
  height: number;
  mime: string;
  data: Buffer;
}

export interface Processed {
  /** The file to store: the upload itself, or a copy with metadata stripped. */
  path: string;
  mime: string;
  meta: Omit<MediaMeta, 'variants'>;
  variants: Variant[];
}

export interface ProcessOptions {
  thumbSmall: number;
  thumbLarge: number;
  /** ffmpeg binary, or null when it is not installed or disabled. */
  ffmpeg: string | null;
}

/** MIME type from the first bytes of the content (never from the name); null when unknown. */
export async function detectMime(path: string): Promise<string | null> {
  return (await fileTypeFromFile(path))?.mime ?? null;
}

/** The MIME type the upload is stored with, or a MagpieError when the content does not fit the kind. */
export function mimeForKind(kind: MediaKind, detected: string | null): string {
  const refuse = (what: string) => new MagpieError('invalid', `the content (${detected ?? 'unknown type'}) is not ${what}`, { details: [{ path: ['kind'], message: `content is ${detected ?? 'unknown'}` }] });
  switch (kind) {
    case 'image':
      if (detected && IMAGE_MIMES.has(detected)) return detected;
      throw refuse('an image (JPEG, PNG, GIF, WebP, AVIF, TIFF)');
    case 'video':
      if (detected?.startsWith('video/')) return detected;
      throw refuse('a video');
    case 'voice':
      if (detected?.startsWith('audio/')) return detected;
      // Audio-only WebM/MP4/Ogg (MediaRecorder) is detected by its container type.
      if (detected === 'video/webm' || detected === 'video/mp4' || detected === 'video/ogg') return detected.replace('video/', 'audio/');
      throw refuse('audio');
    case 'file':
      return detected ?? 'application/octet-stream';
  }
}

/**
 * Measure and prepare an upload of `kind`: images get EXIF stripped (orientation applied
 * first), two thumbnails and a ThumbHash; videos a poster and duration (ffmpeg); voice notes a
 * duration (ffmpeg). Works from the file on disk: only thumbnails are held in memory.
 */
export async function processUpload(kind: MediaKind, path: string, mime: string, opts: ProcessOptions): Promise<Processed> {
  if (kind === 'image') return processImage(path, mime, opts);
  if (kind === 'video') return processVideo(path, mime, opts);
  if (kind === 'voice' && opts.ffmpeg) {
    const probe = await ffprobe(opts.ffmpeg, path).catch(() => null);
    return { path, mime, meta: probe?.duration !== undefined ? { duration: probe.duration } : {}, variants: [] };
  }
  return { path, mime, meta: {}, variants: [] };
}

async function processImage(path: string, mime: string, opts: ProcessOptions): Promise<Processed> {
  const animated = mime === 'image/gif' || mime === 'image/webp';
  let info: Metadata;
  try {
    info = await sharp(path, { animated }).metadata();
  } catch {
    throw new MagpieError('invalid', 'the image cannot be decoded');
  }
  const isAnimated = (info.pages ?? 1) > 1;
  const orientation = info.orientation ?? 1;
  const swap = orientation >= 5 && orientation <= 8;
  const frameHeight = info.pageHeight ?? info.height ?? 1;
  const width = swap ? frameHeight : (info.width ?? 1);
  const height = swap ? (info.width ?? 1) : frameHeight;

  // EXIF can carry the GPS position: write a copy without it (sharp drops metadata by default),
  // turned upright first. Images without metadata keep their original bytes.
  let outPath = path;
  if (info.exif || info.xmp || info.iptc || orientation !== 1) {
    outPath = `${path}.clean`;
    let img = sharp(path, { animated: isAnimated });
    if (!isAnimated) img = img.rotate();
    img = mime === 'image/jpeg' ? img.jpeg({ quality: 92 }) : mime === 'image/png' ? img.png() : mime === 'image/webp' ? img.webp({ quality: 92 }) : mime === 'image/gif' ? img.gif() : mime === 'image/avif' ? img.avif() : img.tiff();
    await img.toFile(outPath);
  }

  const thumb = async (name: 'small' | 'large', edge: number): Promise<Variant> => {
    let img = sharp(outPath, { animated: isAnimated });
    if (!isAnimated) img = img.rotate();
    const out = await img.resize(edge, edge, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 78, effort: 2 }).toBuffer({ resolveWithObject: true });
    const h = isAnimated ? (out.info as OutputInfo & { pageHeight?: number }).pageHeight ?? out.info.height : out.info.height;
    return { name, width: out.info.width, height: h, mime: 'image/webp', data: out.data };
  };
  const variants = [await thumb('small', opts.thumbSmall), await thumb('large', opts.thumbLarge)];
  return {
    path: outPath,
    mime,
    meta: { width, height, placeholder: await thumbhashOf(variants[0]!.data), ...(isAnimated ? { animated: true } : {}) },
    variants,
  };
}

/** ThumbHash (base64) of an image: ~25 bytes that draw a blurred preview. */
export async function thumbhashOf(input: Buffer | string): Promise<string> {
  const { data, info } = await sharp(input).rotate().resize(100, 100, { fit: 'inside' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString('base64');
}

async function ffprobe(ffmpeg: string, path: string): Promise<{ duration?: number; width?: number; height?: number }> {
  const { stdout } = await run(ffprobeOf(ffmpeg), ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 });
  const j = JSON.parse(stdout) as { format?: { duration?: string }; streams?: { codec_type?: string; width?: number; height?: number }[] };
  const v = j.streams?.find((s) => s.codec_type === 'video');
  const d = Number(j.format?.duration);
  return {
    ...(Number.isFinite(d) ? { duration: Math.round(d * 1000) / 1000 } : {}),
    ...(v?.width && v.height ? { width: v.width, height: v.height } : {}),
  };
}

async function processVideo(path: string, mime: string, opts: ProcessOptions): Promise<Processed> {
  if (!opts.ffmpeg) return { path, mime, meta: {}, variants: [] };
  const probe = await ffprobe(opts.ffmpeg, path).catch(() => null);
  if (!probe) return { path, mime, meta: {}, variants: [] };
  const at = probe.duration !== undefined ? Math.min(1, probe.duration / 2) : 0;
  let frame: Buffer | null = null;
  try {
    const { stdout } = await run(opts.ffmpeg, ['-v', 'error', '-ss', String(at), '-i', path, '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'png', '-'], {
      timeout: 60_000,
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    frame = stdout.length > 0 ? stdout : null;
  } catch {
    frame = null;
  }
  const variants: Variant[] = [];
  let placeholder: string | undefined;
  if (frame) {
    const out = await sharp(frame).resize(opts.thumbLarge, opts.thumbLarge, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 78 }).toBuffer({ resolveWithObject: true });
    variants.push({ name: 'poster', width: out.info.width, height: out.info.height, mime: 'image/webp', data: out.data });
    placeholder = await thumbhashOf(out.data);
  }
  return { path, mime, meta: { ...probe, ...(placeholder ? { placeholder } : {}) }, variants };
}
