import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Cross-origin isolation: workers get SharedArrayBuffer and Atomics.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [react()],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  // The JPEG 2000, WebP and ZSTD codecs load lazily; listing them here spares the dev server a
  // re-optimisation (and dynamic imports of stale chunks failing) on first use.
  optimizeDeps: {
    // Scan the rank worker's imports at start, so the first Train click does not make the dev
    // server discover and optimise tfjs/geotiff and reload the page.
    entries: ['index.html', 'workers/*.worker.ts', 'e2e/pages/*.html', 'bench/pages/*.html'],
    exclude: ['webgpu'],
    include: ['@cornerstonejs/codec-openjpeg/wasmjs', '@jsquash/webp/decode.js', 'geotiff', 'pako', 'zstddec/stream'],
  },
});
