// The paper's figures made by the lab: R repeated runs per arm (K values end to end, K values with
// the frozen encoder) on Monte Carlo splits; Figs. 4a-d, 5b-c drawn as SVG, each exported as SVG,
// PNG, CSV and JSON, and everything as one JSON.
import { useState } from 'react';
import { useLab } from './store.ts';
import { download, duration, fixed } from './format.ts';
import { DEFAULT_PAPER_PARAMS, type PaperFiguresParams } from '../lab/paper-figures.ts';
import { FIGURE_IDS, FIGURES, paperFigureCsvs, paperFigureJson, type FigureId, type PaperFigures } from '../lab/paper-figures-data.ts';
import type { PaperFiguresUpdate } from '../lab/lab-jobs.ts';
import { paperFigureSvgs, svgToPng } from './figures-svg.ts';

const list = (s: string) => s.split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0);

function Figure({ id, fig, svg }: { id: FigureId; fig: PaperFigures; svg: string }) {
  const csv = paperFigureCsvs(fig)[id];
  return (
    <figure data-testid={`paper-${id}`} className="paper-figure">
      <div dangerouslySetInnerHTML={{ __html: svg }} />
      <figcaption>
        {FIGURES[id]}{' '}
        <button data-testid={`paper-${id}-svg`} onClick={() => download(`${id}.svg`, svg, 'image/svg+xml')}>SVG</button>
        <button data-testid={`paper-${id}-png`} onClick={() => void svgToPng(svg).then((b) => download(`${id}.png`, b, 'image/png'))}>PNG</button>
        <button data-testid={`paper-${id}-csv`} onClick={() => download(`${id}.csv`, csv, 'text/csv')}>CSV</button>
        <button data-testid={`paper-${id}-json`} onClick={() => download(`${id}.json`, JSON.stringify(paperFigureJson(fig, id), null, 1), 'application/json')}>JSON</button>
      </figcaption>
    </figure>
  );
}

export function PaperFiguresPanel() {
  const { lab, snap } = useLab();
  const [ks, setKs] = useState(DEFAULT_PAPER_PARAMS.ks.join(','));
  const [frozenKs, setFrozenKs] = useState(DEFAULT_PAPER_PARAMS.frozenKs.join(','));
  const [repeats, setRepeats] = useState(DEFAULT_PAPER_PARAMS.repeats);
  const [steps, setSteps] = useState(snap.lab.expSteps);
  const [progress, setProgress] = useState<PaperFiguresUpdate | null>(null);
  const [fig, setFig] = useState<PaperFigures | null>(lab.paperFigures);
  const can = !lab.running && snap.state !== 'busy' && Boolean(snap.data?.entries.length);
  const run = async () => {
    const params: Partial<PaperFiguresParams> = { ks: list(ks), frozenKs: list(frozenKs), repeats, steps };
    const out = await lab.runPaperFigures(params, setProgress);
    if (out) setFig(out);
  };
  const svgs = fig ? paperFigureSvgs(fig) : null;
  return (
    <div className="exp" data-testid="paper-figures">
      <h3>The paper&apos;s figures (repeated runs)</h3>
      <div className="row">
        <label>
          K end to end <input data-testid="paper-ks" value={ks} onChange={(e) => setKs(e.target.value)} size={10} />
        </label>
        <label>
          K frozen <input data-testid="paper-frozen-ks" value={frozenKs} onChange={(e) => setFrozenKs(e.target.value)} size={8} />
        </label>
        <label>
          runs per arm R <input data-testid="paper-repeats" type="number" min={1} max={100} value={repeats} onChange={(e) => setRepeats(Math.max(1, Number(e.target.value) || 1))} style={{ width: '4em' }} />
        </label>
        <label title="0: the configuration's epochs">
          steps per run <input data-testid="paper-steps" type="number" min={0} value={steps} onChange={(e) => setSteps(Math.max(0, Number(e.target.value) || 0))} style={{ width: '5em' }} />
        </label>
        <button data-testid="run-paper" disabled={!can} onClick={() => void run()}>
          Run {(list(ks).length + list(frozenKs).length) * repeats} runs
        </button>
        {progress?.running && <button data-testid="paper-cancel" onClick={() => lab.cancelBusy()}>Cancel</button>}
        {progress && (
          <span data-testid="paper-status">
            {progress.done} of {progress.total} runs; {progress.status}
          </span>
        )}
      </div>
      <p className="hint">Each repeat draws a new train/validation split (Monte Carlo cross-validation, stratified by label); every arm of a repeat trains on it, from the same initial weights (the pretrained encoder when one is loaded; frozen = that encoder frozen). Intervals: 95% percentile bootstrap over the runs.</p>
      {fig && svgs && (
        <>
          <table data-testid="paper-table">
            <thead>
              <tr>
                <th>arm</th>
                <th>runs</th>
                <th>final train loss (95% CI)</th>
                <th>val AUC (95% CI)</th>
                <th>attention AUC (95% CI)</th>
                <th>precision@5 (chance)</th>
              </tr>
            </thead>
            <tbody>
              {fig.arms.map((a) => (
                <tr key={a.arm} data-testid="paper-row">
                  <td>{a.arm}</td>
                  <td>{a.runs}</td>
                  <td>{fixed(a.finalTrainLoss.mean)} ({fixed(a.finalTrainLoss.lower)}–{fixed(a.finalTrainLoss.upper)})</td>
                  <td>{fixed(a.auc.mean)} ({fixed(a.auc.lower)}–{fixed(a.auc.upper)})</td>
                  <td>{fixed(a.attentionAuc.mean)} ({fixed(a.attentionAuc.lower)}–{fixed(a.attentionAuc.upper)})</td>
                  <td>{fixed(a.precisionAt5.mean, 2)} ({fixed(a.attentionChance, 2)})</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="hint">{fig.runs.length} runs in {duration(fig.wallMs)}; {fig.settings.stepsPerRun} steps each; validation share {fixed(fig.settings.valFraction, 2)}; encoder {fig.settings.encoder}.</p>
          <button data-testid="paper-all-json" onClick={() => download('paper-figures.json', JSON.stringify(fig, null, 1), 'application/json')}>All data (JSON)</button>
          <button data-testid="paper-runs-csv" onClick={() => download('paper-runs.csv', paperFigureCsvs(fig).runs, 'text/csv')}>Runs (CSV)</button>
          <div className="paper-grid" style={{ display: 'flex', flexWrap: 'wrap', gap: 8 }}>
            {FIGURE_IDS.map((id) => (
              <Figure key={id} id={id} fig={fig} svg={svgs[id]} />
            ))}
          </div>
        </>
      )}
    </div>
  );
}
