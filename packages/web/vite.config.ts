import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
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
 * Gives the service worker (public/sw.js) the list of the build's files to cache as the
 * offline app shell, and a build id (so a new build is a new worker that drops the old cache).
 */
function offlineShell(): Plugin {
  let outDir = 'dist';
  return {
    name: 'magpie-offline-shell',
    apply: 'build',
    configResolved(c) {
      outDir = c.build.outDir;
    },
    closeBundle: {
      order: 'pre',
      handler() {
        const all = files(outDir).map((f) => f.slice(outDir.length).replace(/\\/g, '/').replace(/^\/?/, '/'));
        const shell = ['/', ...all.filter((p) => p !== '/sw.js' && p !== '/index.html' && !/\.(br|gz)$/.test(p)).sort()];
        const hash = createHash('sha256');
        for (const p of all.sort()) if (p !== '/sw.js') hash.update(p).update(readFileSync(join(outDir, p)));
        const sw = join(outDir, 'sw.js');
        const src = readFileSync(sw, 'utf8');
        const out = src.replace('/*__MAGPIE_PRECACHE__*/ []', JSON.stringify(shell)).replace("/*__MAGPIE_BUILD__*/ 'dev'", JSON.stringify(hash.digest('hex').slice(0, 12)));
        if (out === src) throw new Error('sw.js: the precache placeholders are missing');
        writeFileSync(sw, out);
      },
    },
  };
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
    closeBundle: {
      order: 'post',
      handler() {
        for (const f of files(outDir)) {
          if (!COMPRESSIBLE.test(f)) continue;
          const raw = readFileSync(f);
          writeFileSync(`${f}.gz`, gzipSync(raw, { level: 9 }));
          writeFileSync(`${f}.br`, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }));
        }
      },
    },
  };
}

// The server serves dist/ at / (packages/server/src/http/web-client.ts); `npm run dev`
// proxies the API and the socket to a server on :8080.
export default defineConfig({
  plugins: [react(), offlineShell(), precompress()],
  // Bundle the SDK and protocol from source (their package exports name it "magpie-source").
  resolve: { conditions: ['magpie-source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api': 'http://localhost:8080',
      '/ws': { target: 'ws://localhost:8080', ws: true },
    },
  },
});
