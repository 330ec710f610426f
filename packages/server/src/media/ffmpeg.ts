import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Is ffmpeg (and ffprobe beside it) runnable? Resolves with the binary or null. */
export async function findFfmpeg(bin: string): Promise<string | null> {
  if (bin === 'off') return null;
  try {
    await run(bin, ['-version'], { timeout: 10_000 });
    await run(ffprobeOf(bin), ['-version'], { timeout: 10_000 });
    return bin;
  } catch {
    return null;
  }
}

export function ffprobeOf(ffmpeg: string): string {
  return ffmpeg.replace(/ffmpeg(\.exe)?$/, 'ffprobe$1');
}

