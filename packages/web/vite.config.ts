import { defineConfig, defaultClientConditions } from 'vite';
import react from '@vitejs/plugin-react';

// The server serves dist/ at / (packages/server/src/http/web-client.ts); `npm run dev`
// proxies the API and the socket to a server on :8080.
export default defineConfig({
  plugins: [react()],
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
