// A slide drawn from its smallest pyramid level with overlays: the tissue tile grid, an attention
// heatmap (scores per engine tile index) and the planted lesions of the demo set. Synthetic
// slides have no image: their tiles are laid out on a square grid.
import { useEffect, useRef, useState } from 'react';
import type { SlideInfo } from '../lab/dataset.ts';
import { thumbnail } from './slide-images.ts';

export interface Overlays {
  grid?: boolean;
  lesions?: boolean;
  /** Attention: tile indices and raw scores s (softmax is taken here for colouring). */
  attention?: { tileIndices: number[]; scores: number[] } | null;
}

/** Colour of a value in [0, 1]: transparent blue through yellow to opaque red. */
export function heat(v: number): string {
  const r = Math.round(255 * Math.min(1, 2 * v));
  const g = Math.round(255 * Math.min(1, 2 * (1 - v)) * (v > 0.5 ? 1 : v * 2));
  const b = Math.round(255 * Math.max(0, 1 - 2 * v));
  return `rgba(${r},${g},${b},${0.25 + 0.6 * v})`;
}

/** Tile rectangles in a common coordinate space (level 0 for real slides, a square grid otherwise). */
export function tileLayout(slide: SlideInfo): { rects: number[]; width: number; height: number } {
  if (slide.grid && slide.width && slide.height) return { rects: slide.grid.rects, width: slide.width, height: slide.height };
  const n = slide.tissueTiles;
  const cols = Math.ceil(Math.sqrt(n));
  const rects: number[] = [];
  for (let i = 0; i < n; i++) rects.push((i % cols) * 10, Math.floor(i / cols) * 10, 10, 10);
  return { rects, width: cols * 10, height: Math.ceil(n / cols) * 10 };
}

export function SlideCanvas({ slide, overlays, maxWidth = 560, testId }: { slide: SlideInfo; overlays: Overlays; maxWidth?: number; testId: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [image, setImage] = useState<ImageBitmap | HTMLCanvasElement | null>(null);
  const [drawn, setDrawn] = useState(0);

  useEffect(() => {
    setImage(null);
    if (!slide.url) return;
    let live = true;
    thumbnail(slide).then(({ image: img }) => {
      if (!live) return;
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      c.getContext('2d')!.putImageData(img, 0, 0);
      setImage(c);
    }, () => undefined);
    return () => {
      live = false;
    };
  }, [slide]);

  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const layout = tileLayout(slide);
    const scale = Math.min(maxWidth / layout.width, 420 / layout.height);
    c.width = Math.round(layout.width * scale);
    c.height = Math.round(layout.height * scale);
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = slide.url ? '#fff' : '#f4ecf4';
    ctx.fillRect(0, 0, c.width, c.height);
    if (image) ctx.drawImage(image, 0, 0, c.width, c.height);
    const r = layout.rects;
    const box = (i: number) => [r[i * 4] * scale, r[i * 4 + 1] * scale, r[i * 4 + 2] * scale, r[i * 4 + 3] * scale] as const;
    if (overlays.grid) {
      ctx.strokeStyle = 'rgba(0,120,0,0.55)';
      ctx.lineWidth = 1;
      for (let i = 0; i < r.length / 4; i++) ctx.strokeRect(...box(i));
    }
    const att = overlays.attention;
    if (att && att.scores.length) {
      const m = Math.max(...att.scores);
      const e = att.scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      const a = e.map((v) => v / z);
      const lo = Math.min(...a), hi = Math.max(...a);
      att.tileIndices.forEach((t, i) => {
        if (t * 4 >= r.length) return;
        ctx.fillStyle = heat(hi > lo ? (a[i] - lo) / (hi - lo) : 0.5);
        ctx.fillRect(...box(t));
      });
    }
    if (overlays.lesions && slide.lesionTiles?.length) {
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 2;
      ctx.setLineDash([4, 3]);
      for (const t of slide.lesionTiles) ctx.strokeRect(...box(t));
      ctx.setLineDash([]);
    }
    setDrawn((d) => d + 1);
  }, [slide, image, overlays.grid, overlays.lesions, overlays.attention, maxWidth]);

  return <canvas ref={ref} className="slide-canvas" data-testid={testId} data-drawn={drawn} data-slide={slide.id} data-has-image={image ? 1 : 0} />;
}
