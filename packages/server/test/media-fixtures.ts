import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

/** A JPEG w×h with EXIF orientation 6 (shown rotated 90°) and a GPS position: both must not survive. */
export async function jpegWithExif(w = 400, h = 200): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD0: { Make: 'MagpieCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 0/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 0/1' } })
    .toBuffer();
}

export async function png(w: number, h: number): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 4, background: { r: 20, g: 120, b: 220, alpha: 1 } } }).png().toBuffer();
}

/** An animated GIF of `frames` frames, w×h each. */
export async function animatedGif(w = 64, h = 48, frames = 3): Promise<Buffer> {
  const parts = await Promise.all(
    Array.from({ length: frames }, (_, i) => sharp({ create: { width: w, height: h, channels: 3, background: { r: 80 * i, g: 100, b: 50 } } }).png().toBuffer()),
  );
  return sharp(parts, { join: { animated: true } }).gif({ delay: 100, loop: 0 }).toBuffer();
}

export function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A 2-second 320×240 MP4 made by ffmpeg (null without ffmpeg). */
export function mp4(): Buffer | null {
  if (!hasFfmpeg()) return null;
  const out = join(mkdtempSync(join(tmpdir(), 'magpie-vid-')), 'v.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=duration=2:size=320x240:rate=10', '-pix_fmt', 'yuv420p', '-y', out]);
  return readFileSync(out);
}

/** A 1.5-second Ogg/Opus voice note made by ffmpeg (null without ffmpeg). */
export function oggVoice(): Buffer | null {
  if (!hasFfmpeg()) return null;
  const out = join(mkdtempSync(join(tmpdir(), 'magpie-voice-')), 'v.ogg');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1.5', '-c:a', 'libopus', '-y', out]);
  return readFileSync(out);
}

/** tus metadata header value. */
export function tusMetadata(meta: Record<string, string>): string {
  return Object.entries(meta)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/** Create a tus upload; resolves with the response (Location holds the upload URL). */
export async function tusCreate(base: string, token: string, size: number, meta: Record<string, string>): Promise<Response> {
  return fetch(`${base}/api/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-length': String(size), 'upload-metadata': tusMetadata(meta) },
  });
}

export async function tusPatch(base: string, token: string, location: string, offset: number, chunk: Buffer): Promise<Response> {
  return fetch(new URL(location, base), {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(chunk),
  });
}

/** Upload bytes in one go; resolves with the upload id and the final PATCH response. */
export async function tusUpload(base: string, token: string, data: Buffer, meta: Record<string, string>): Promise<{ id: string; res: Response }> {
  const created = await tusCreate(base, token, data.length, meta);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  const location = created.headers.get('location')!;
  const res = await tusPatch(base, token, location, 0, data);
  return { id: location.split('/').pop()!, res };
}
