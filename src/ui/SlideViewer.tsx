// A zoomable slide viewer: OpenSeadragon over the project's slide reader. A custom tile source
// asks SlideSource.readRegion for each deep-zoom tile (from the pyramid level closest to the
// zoom), and overlays in image coordinates show the pixel-level tissue mask (the same detector,
// src/slide/tissue.ts, that planned the tile grid), the tissue tiles of the grid, the attention
// heatmap and the planted lesions.
import { useEffect, useRef, useState } from 'react';
import OpenSeadragon from 'openseadragon';
import type { SlideInfo } from '../lab/dataset.ts';
import { detectTissue, type TissueMask } from '../slide/tissue.ts';
import type { SlideSource } from '../slide/source.ts';
import { openSource } from './slide-images.ts';
import { heat } from './SlideCanvas.tsx';

const TILE = 256;

interface Job {
  src: string;
  finish: (data: unknown, request: unknown, type: string) => void;
  fail: (message: string, request: unknown) => void;
}

export interface ViewerOverlays {
  /** The tissue tiles of the grid (outlines) and the pixel-level tissue mask (green wash). */
  tissue: boolean;
  lesions: boolean;
  attention: { tileIndices: number[]; scores: number[] } | null;
}

export function SlideViewer({ slide, overlays }: { slide: SlideInfo; overlays: ViewerOverlays }) {
  const host = useRef<HTMLDivElement>(null);
  const viewer = useRef<OpenSeadragon.Viewer | null>(null);
  const [status, setStatus] = useState('opening…');
  const [tiles, setTiles] = useState(0);
  const source = useRef<SlideSource | null>(null);
  const [mask, setMask] = useState<{ canvas: HTMLCanvasElement; w0: number; h0: number; info: string } | { error: string } | null>(null);
  const [showMask, setShowMask] = useState(true);

  useEffect(() => {
    let live = true;
    setStatus('opening…');
    setTiles(0);
    setMask(null);
    void openSource(slide).then(
      (src) => {
        if (!live || !host.current) return;
        source.current = src;
        const l0 = src.levels[0];
        const maxLevel = Math.ceil(Math.log2(Math.max(l0.width, l0.height)));
        const ts = new OpenSeadragon.TileSource({ width: l0.width, height: l0.height, tileSize: TILE, tileOverlap: 0, minLevel: 0, maxLevel } as never);
        Object.assign(ts, {
          getTileUrl: (level: number, x: number, y: number) => `slide:${slide.id}/${level}/${x}/${y}`,
          downloadTileAbort: () => undefined,
          downloadTileStart: (job: Job) => {
            const [level, x, y] = job.src.split('/').slice(-3).map(Number);
            const scale = 2 ** (maxLevel - level); // level-0 px per output px
            const x0 = x * TILE * scale, y0 = y * TILE * scale;
            const w0 = Math.min(TILE * scale, l0.width - x0), h0 = Math.min(TILE * scale, l0.height - y0);
            const lvl = [...src.levels].reverse().find((l) => l.downsample <= scale * 1.01) ?? l0;
            const lx = Math.floor(x0 / lvl.downsample), ly = Math.floor(y0 / lvl.downsample);
            const lw = Math.max(1, Math.min(lvl.width - lx, Math.round(w0 / lvl.downsample)));
            const lh = Math.max(1, Math.min(lvl.height - ly, Math.round(h0 / lvl.downsample)));
            src.readRegion(lvl.index, lx, ly, lw, lh).then(
              (r) => {
                const tmp = document.createElement('canvas');
                tmp.width = r.width;
                tmp.height = r.height;
                const img = new ImageData(r.width, r.height);
                for (let i = 0; i < r.width * r.height; i++) {
                  img.data[i * 4] = r.data[i * 3];
                  img.data[i * 4 + 1] = r.data[i * 3 + 1];
                  img.data[i * 4 + 2] = r.data[i * 3 + 2];
                  img.data[i * 4 + 3] = 255;
                }
                tmp.getContext('2d')!.putImageData(img, 0, 0);
                const out = document.createElement('canvas');
                out.width = Math.max(1, Math.ceil(w0 / scale));
                out.height = Math.max(1, Math.ceil(h0 / scale));
                const ctx = out.getContext('2d')!;
                ctx.drawImage(tmp, 0, 0, out.width, out.height);
                setTiles((n) => n + 1);
                job.finish(ctx, null, 'context2d');
              },
              (e: Error) => job.fail(e.message, null),
            );
          },
        });
        viewer.current = OpenSeadragon({ element: host.current, tileSources: ts, showNavigationControl: false, animationTime: 0.4, maxZoomPixelRatio: 4, gestureSettingsMouse: { clickToZoom: false } } as OpenSeadragon.Options);
        viewer.current.addHandler('open', () => live && setStatus('ready'));
        viewer.current.addHandler('open-failed', (e: { message?: string }) => live && setStatus(`could not open: ${e.message ?? 'unknown error'}`));
      },
      (e: Error) => live && setStatus(`could not open: ${e.message}`),
    );
    return () => {
      live = false;
      viewer.current?.destroy();
      viewer.current = null;
      source.current = null;
    };
  }, [slide]);

  // The pixel-level tissue mask, detected once per slide when first shown (a low-resolution read).
  const wantMask = overlays.tissue && showMask && status === 'ready';
  useEffect(() => {
    const src = source.current;
    if (!wantMask || mask || !src) return;
    const abort = new AbortController();
    detectTissue(src, { signal: abort.signal }).then(
      (m) => setMask({ canvas: maskCanvas(m), w0: m.width * m.downsampleX, h0: m.height * m.downsampleY, info: `tissue mask ${m.width}×${m.height} px, ${(100 * m.fraction).toFixed(0)}% tissue, gray threshold ${m.threshold}` }),
      (e: Error) => !abort.signal.aborted && setMask({ error: `tissue mask failed: ${e.message}` }),
    );
    return () => abort.abort();
  }, [wantMask, mask]);

  useEffect(() => {
    const v = viewer.current;
    if (!v || status !== 'ready' || !slide.grid) return;
    v.clearOverlays();
    const r = slide.grid.rects;
    const add = (i: number, style: Partial<CSSStyleDeclaration>, title: string) => {
      const el = document.createElement('div');
      Object.assign(el.style, style);
      el.title = title;
      el.className = 'osd-overlay';
      v.addOverlay({ element: el, location: v.viewport.imageToViewportRectangle(r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3]) });
    };
    const n = r.length / 4;
    // Mask pixel (i, j) covers level-0 [i * dsX, (i + 1) * dsX): the canvas spans width * dsX.
    if (wantMask && mask && 'canvas' in mask) v.addOverlay({ element: mask.canvas, location: v.viewport.imageToViewportRectangle(0, 0, mask.w0, mask.h0) });
    if (overlays.tissue) for (let i = 0; i < n; i++) add(i, { border: '1px solid rgba(0,140,0,0.7)', background: 'rgba(0,160,0,0.08)' }, `tissue tile ${i}`);
    const att = overlays.attention;
    if (att?.scores.length) {
      const m = Math.max(...att.scores);
      const e = att.scores.map((s) => Math.exp(s - m));
      const lo = Math.min(...e), hi = Math.max(...e);
      att.tileIndices.forEach((t, i) => t < n && add(t, { background: heat(hi > lo ? (e[i] - lo) / (hi - lo) : 0.5) }, `tile ${t}: attention score ${att.scores[i].toFixed(3)}`));
    }
    if (overlays.lesions) for (const t of slide.lesionTiles ?? []) add(t, { border: '2px dashed #000' }, `planted lesion (tile ${t})`);
  }, [status, slide, overlays.tissue, overlays.lesions, overlays.attention, wantMask, mask]);

  const maskState = !wantMask ? 'off' : !mask ? 'detecting' : 'canvas' in mask ? 'shown' : 'failed';
  return (
    <div className="osd-wrap">
      <div ref={host} className="osd" data-testid="slide-viewer" data-status={status} data-tiles={tiles} data-mask={maskState} />
      <span className="muted">
        {status === 'ready' ? 'scroll to zoom, drag to pan' : status}
        {overlays.tissue && status === 'ready' && (
          <>
            {' · '}
            <label title="The tissue detector's pixel mask (grayscale Otsu threshold, saturation and pen filters) that the tile grid was planned on">
              <input type="checkbox" checked={showMask} onChange={(e) => setShowMask(e.target.checked)} /> pixel tissue mask
            </label>
            {wantMask && <> {' · '}{!mask ? 'detecting tissue…' : 'canvas' in mask ? mask.info : mask.error}</>}
          </>
        )}
      </span>
    </div>
  );
}

/** The mask as a canvas, one pixel per mask pixel: tissue green and translucent, background clear. */
function maskCanvas(m: TissueMask): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = m.width;
  c.height = m.height;
  c.className = 'osd-overlay osd-mask';
  c.title = 'pixel-level tissue mask';
  Object.assign(c.style, { imageRendering: 'pixelated', pointerEvents: 'none' });
  const img = new ImageData(m.width, m.height);
  for (let i = 0; i < m.data.length; i++) {
    if (!m.data[i]) continue;
    img.data[i * 4] = 0;
    img.data[i * 4 + 1] = 170;
    img.data[i * 4 + 2] = 60;
    img.data[i * 4 + 3] = 80;
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}
