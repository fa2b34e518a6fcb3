// Page for e2e/slide-decode.spec.ts: runs the decode comparison in a Web Worker and publishes the
// report as window.__slideDecode (or window.__slideDecodeError). ?files=a,b&passes=N
import type { DecodeReport, DecodeRequest } from './slide-decode.worker.ts';

declare global {
  interface Window {
    __slideDecode?: DecodeReport[];
    __slideDecodeError?: string;
  }
}

const params = new URLSearchParams(location.search);
const request: DecodeRequest = {
  base: '/.fixtures/slide/',
  files: (params.get('files') ?? 'svs-rgb.svs,svs-ycbcr.svs,vips-pyramid.tiff,bigtiff.tiff').split(','),
  passes: Number(params.get('passes') ?? 10),
};
const out = document.getElementById('out')!;
const worker = new Worker(new URL('./slide-decode.worker.ts', import.meta.url), { type: 'module' });
worker.onmessage = (e: MessageEvent<{ ok: true; reports: DecodeReport[] } | { ok: false; error: string }>) => {
  if (e.data.ok) window.__slideDecode = e.data.reports;
  else window.__slideDecodeError = e.data.error;
  out.textContent = JSON.stringify(e.data, null, 2);
  worker.terminate();
};
worker.onerror = (e) => {
  window.__slideDecodeError = `worker error: ${e.message}`;
  out.textContent = window.__slideDecodeError;
};
worker.postMessage(request);
