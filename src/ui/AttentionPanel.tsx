// Where the model looks: the attention heatmap of each validation slide (from the latest
// validation) over the slide, and its top-attention tiles as a gallery.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useLab } from './store.ts';
import { SlideCanvas } from './SlideCanvas.tsx';
import { SlideViewer } from './SlideViewer.tsx';
import { tileImage } from './slide-images.ts';
import type { DataSet, SlideInfo } from '../lab/dataset.ts';
import { epochs, fixed } from './format.ts';

function TileThumb({ data, slide, index, score, lesion }: { data: DataSet; slide: SlideInfo; index: number; score: number; lesion: boolean }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    let live = true;
    tileImage(data, slide, index, 96).then((img) => {
      const c = ref.current;
      if (!live || !c) return;
      const tmp = document.createElement('canvas');
      tmp.width = img.width;
      tmp.height = img.height;
      tmp.getContext('2d')!.putImageData(img, 0, 0);
      c.getContext('2d')!.drawImage(tmp, 0, 0, c.width, c.height);
    }, () => undefined);
    return () => {
      live = false;
    };
  }, [data, slide, index]);
  return (
    <figure className={lesion ? 'lesion' : ''} data-testid="gallery-tile">
      <canvas ref={ref} width={96} height={96} />
      <figcaption>
        tile {index} · {fixed(score, 2)}
        {lesion ? ' · lesion' : ''}
      </figcaption>
    </figure>
  );
}

export function AttentionPanel({ focus }: { focus: string | null }) {
  const { snap } = useLab();
  const ev = snap.evals[snap.evals.length - 1];
  const data = snap.data;
  const [chosen, setChosen] = useState<string | null>(null);
  const [showLesions, setShowLesions] = useState(true);
  const [zoom, setZoom] = useState(false);
  const [showTissue, setShowTissue] = useState(true);
  const slides = ev?.slides ?? [];
  const id = chosen && slides.some((s) => s.slideId === chosen) ? chosen : slides[0]?.slideId;
  const evSlide = slides.find((s) => s.slideId === id);
  const info = data?.slides.find((s) => s.id === id);
  const viewing = focus ? data?.slides.find((s) => s.id === focus) : undefined;
  const top = useMemo(() => {
    if (!evSlide) return [];
    return evSlide.attention.tileIndices.map((t, i) => ({ t, s: evSlide.attention.scores[i] })).sort((a, b) => b.s - a.s).filter((x, i, arr) => arr.findIndex((y) => y.t === x.t) === i).slice(0, 8);
  }, [evSlide]);

  return (
    <section id="attention" className="panel" data-testid="attention-panel">
      <h2>Where the model looks</h2>
      {viewing && (
        <div className="viewer" data-testid="viewer">
          <h3>Slide {viewing.id}</h3>
          <div className="row">
            <label>
              <input type="checkbox" checked={showTissue} onChange={(e) => setShowTissue(e.target.checked)} /> tissue tiles
            </label>
            <label>
              <input type="checkbox" checked={showLesions} onChange={(e) => setShowLesions(e.target.checked)} /> planted lesions
            </label>
            {ev?.slides.some((s) => s.slideId === viewing.id) && <span className="muted">attention of the latest validation shown</span>}
          </div>
          <SlideViewer slide={viewing} overlays={{ tissue: showTissue, lesions: showLesions, attention: ev?.slides.find((s) => s.slideId === viewing.id)?.attention ?? null }} />
        </div>
      )}
      {!ev || !data ? (
        <p className="muted">The attention heatmaps appear after the first validation (end of an epoch).</p>
      ) : (
        <>
          <div className="row">
            <label>
              Validation slide{' '}
              <select data-testid="attention-slide" value={id} onChange={(e) => setChosen(e.target.value)}>
                {slides.map((s) => (
                  <option key={s.slideId} value={s.slideId}>
                    {s.slideId} (label {s.label}, P(pos) {s.prob.toFixed(2)})
                  </option>
                ))}
              </select>
            </label>
            <label>
              <input type="checkbox" checked={showLesions} onChange={(e) => setShowLesions(e.target.checked)} /> show planted lesions
            </label>
            {info?.url && (
              <label>
                <input type="checkbox" data-testid="zoom-toggle" checked={zoom} onChange={(e) => setZoom(e.target.checked)} /> zoomable viewer
              </label>
            )}
            <span className="muted">epoch {epochs(ev.epoch)}, step {ev.step}</span>
          </div>
          {ev.attention && ev.attention.slides > 0 ? (
            <p data-testid="attention-score">
              Attention score on {ev.attention.slides} positive validation slide{ev.attention.slides === 1 ? '' : 's'} with known lesions: AUC{' '}
              <b data-testid="attention-auc">{fixed(ev.attention.auc, 3)}</b> (lesion against other tiles; 0.5 is chance), precision@{ev.attention.k}{' '}
              <b data-testid="attention-precision">{fixed(ev.attention.precisionAtK, 2)}</b> (chance {fixed(ev.attention.chance, 2)}).
            </p>
          ) : (
            <p className="muted" data-testid="attention-score">No attention score: no validation slide has lesion ground truth (planted lesions, or an annotation file).</p>
          )}
          {info && evSlide && (
            <div className="attention">
              {zoom && info.url ? (
                <SlideViewer slide={info} overlays={{ tissue: false, lesions: showLesions, attention: evSlide.attention }} />
              ) : (
                <SlideCanvas testId="heatmap" slide={info} overlays={{ attention: evSlide.attention, lesions: showLesions }} />
              )}
              <div className="gallery" data-testid="gallery">
                <h3>Top attention tiles</h3>
                {top.map((x) => (
                  <TileThumb key={`${id}-${x.t}`} data={data} slide={info} index={x.t} score={x.s} lesion={Boolean(info.lesionTiles?.includes(x.t))} />
                ))}
              </div>
            </div>
          )}
        </>
      )}
    </section>
  );
}
