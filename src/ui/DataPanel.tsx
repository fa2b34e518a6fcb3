// Data: the demo set or synthetic slides, or the user's own slides dropped with a manifest CSV;
// one row per slide with thumbnail, label, split, tissue-tile count and any error.
import { useEffect, useRef, useState, type DragEvent } from 'react';
import { useLab } from './store.ts';
import type { SlideInfo } from '../lab/dataset.ts';
import type { DroppedFile } from '../lab/files.ts';
import { thumbnail } from './slide-images.ts';

function Thumb({ slide }: { slide: SlideInfo }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!slide.url || slide.error) return;
    let live = true;
    thumbnail(slide).then(
      ({ image }) => {
        if (!live || !ref.current) return;
        const c = ref.current;
        const tmp = document.createElement('canvas');
        tmp.width = image.width;
        tmp.height = image.height;
        tmp.getContext('2d')!.putImageData(image, 0, 0);
        const scale = 64 / Math.max(image.width, image.height);
        c.width = Math.round(image.width * scale);
        c.height = Math.round(image.height * scale);
        c.getContext('2d')!.drawImage(tmp, 0, 0, c.width, c.height);
      },
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [slide]);
  if (!slide.url || slide.error) return <span className="thumb-none">–</span>;
  return failed ? <span className="thumb-none">no preview</span> : <canvas ref={ref} className="thumb" width={64} height={48} />;
}

export function DataPanel({ onView }: { onView: (id: string) => void }) {
  const { lab, snap } = useLab();
  const [over, setOver] = useState(false);
  const busy = lab.running;
  const data = snap.data;

  const load = (files: FileList | File[]) => {
    const list: DroppedFile[] = Array.from(files).map((f) => ({ name: (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name, blob: f }));
    if (list.length) void lab.loadFiles(list);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    load(e.dataTransfer.files);
  };
  const usable = data?.entries.length ?? 0;
  const counts = data ? ['train', 'val'].map((sp) => `${data.entries.filter((e) => e.split === sp).length} ${sp}`).join(', ') : '';

  return (
    <section id="data" className="panel" data-testid="data-panel">
      <h2>Data</h2>
      <div className="row">
        <button data-testid="load-demo" disabled={busy} onClick={() => void lab.loadDemo()}>Load demo slides</button>
        <button data-testid="load-synthetic" disabled={busy} onClick={() => void lab.loadSynthetic()}>Synthetic slides</button>
        <label className="button">
          Open files…
          <input data-testid="file-input" type="file" multiple hidden disabled={busy} onChange={(e) => e.target.files && load(e.target.files)} />
        </label>
        <label className="button">
          Open folder…
          <input data-testid="folder-input" type="file" hidden disabled={busy} {...({ webkitdirectory: '' } as object)} onChange={(e) => e.target.files && load(e.target.files)} />
        </label>
      </div>
      <div
        className={`dropzone${over ? ' over' : ''}`}
        data-testid="dropzone"
        data-over={over ? '1' : '0'}
        onDragEnter={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragOver={(e) => {
          e.preventDefault(); // allows the drop
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        Drop slides (TIFF, SVS, OME-TIFF) together with a manifest CSV <code>slide,label,split[,path][,mpp]</code> here. A cohort on a server: <code>#data=manifest:&lt;URL of the CSV&gt;</code>.
      </div>
      {snap.state === 'loading' && (
        <p data-testid="data-loading">
          Loading{snap.loading ? ` ${snap.loading.name} (${snap.loading.done} of ${snap.loading.total})` : ''}…
        </p>
      )}
      {data && (
        <>
          <p data-testid="data-summary">
            <b>{data.name}</b>: {data.slides.length} slides, {usable} usable ({counts}), {data.entries.reduce((a, e) => a + e.numTiles, 0)} tissue tiles.
          </p>
          {data.issues.length > 0 && (
            <ul className="issues" data-testid="data-issues">
              {data.issues.map((i) => (
                <li key={i}>{i}</li>
              ))}
            </ul>
          )}
          <div className="table-wrap">
            <table className="slides" data-testid="slide-table">
              <thead>
                <tr>
                  <th></th>
                  <th>Slide</th>
                  <th>Label</th>
                  <th>Split</th>
                  <th>Tissue tiles</th>
                  <th title="the slide's µm per pixel at level 0 → the level tiles are read from">µm/px → level</th>
                  <th>Status</th>
                </tr>
              </thead>
              <tbody>
                {data.slides.map((s) => (
                  <tr key={s.id} data-testid={`slide-row-${s.id}`} className={s.error ? 'bad' : ''}>
                    <td><Thumb slide={s} /></td>
                    <td>{s.id}</td>
                    <td>{s.label === null ? '?' : s.label === 1 ? 'positive' : 'negative'}</td>
                    <td>{s.split ?? '?'}</td>
                    <td>{s.tissueTiles || '–'}</td>
                    <td data-testid="slide-mpp">{s.mpp ? `${Math.round(s.mpp * 10000) / 10000}${s.mppSource === 'user' ? ' (manifest)' : ''} → ${s.level ?? 0}${s.resample ? ' (resampled)' : ''}` : '–'}</td>
                    <td>
                      {s.error ? (
                        <span className="error" data-testid="slide-error">{s.error}</span>
                      ) : s.url ? (
                        <button className="link" onClick={() => onView(s.id)}>view</button>
                      ) : (
                        'ok'
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
