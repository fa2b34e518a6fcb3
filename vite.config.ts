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
  // The JPEG 2000 codec loads lazily; listing it here spares the dev server a reload on first use.
  optimizeDeps: { exclude: ['webgpu'], include: ['@cornerstonejs/codec-openjpeg/wasmjs'] },
});
