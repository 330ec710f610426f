import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const COMPRESSIBLE = /\.(js|css|html|svg|json|webmanifest)$/;

function files(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

/**
 * Writes `.br` and `.gz` beside every text file of the build, at maximum compression, so the
 * server sends them as they are (packages/server/src/http/web-client.ts) and spends no CPU
 * per request.
 */
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'magpie-precompress',
    apply: 'build',
    configResolved(c) {
      outDir = c.build.outDir;
    },
    closeBundle() {
      for (const f of files(outDir)) {
        if (!COMPRESSIBLE.test(f)) continue;
        const raw = readFileSync(f);
        writeFileSync(`${f}.gz`, gzipSync(raw, { level: 9 }));
        writeFileSync(`${f}.br`, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }));
      }
    },
  };
}

// The server serves dist/ at / (packages/server/src/http/web-client.ts); `npm run dev`
// proxies the API and the socket to a server on :8080.
export default defineConfig({
  plugins: [react(), precompress()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api': 'http://localhost:8080',
      '/ws': { target: 'ws://localhost:8080', ws: true },
    },
  },
});
