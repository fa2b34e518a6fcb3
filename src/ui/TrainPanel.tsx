// Train: start, pause, resume, stop, single step; progress with ETA and tiles/s; live charts of
// training loss, validation AUC per epoch and the ROC curve with its bootstrapped 95% band;
// checkpoints, resume after reload, exports.
import { useMemo, useState } from 'react';
import { mean } from '../core/stats.ts';
import type uPlot from 'uplot';
import { useLab } from './store.ts';
import { Chart } from './Chart.tsx';
import { download, duration, epochs, fixed } from './format.ts';
import { RankList } from './SetupPanel.tsx';

function Bar({ value, max, label, testId }: { value: number; max: number; label: string; testId: string }) {
  return (
    <div className="bar" data-testid={testId} data-value={value} data-max={max}>
      <div className="fill" style={{ width: `${max ? (100 * value) / max : 0}%` }} />
      <span>{label}</span>
    </div>
  );
}

export function TrainPanel() {
  const { lab, snap } = useLab();
  const [note, setNote] = useState('');
  const st = snap.state;
  const p = snap.progress;
  const hasData = Boolean(snap.data?.entries.length);
  const canStart = hasData && ['ready', 'done', 'stopped', 'error'].includes(st);
  const last = snap.steps[snap.steps.length - 1];

  const lossData = useMemo<uPlot.AlignedData>(() => {
    const x = snap.steps.map((s) => s.step + 1);
    const loss = snap.steps.map((s) => s.loss);
    const avg = loss.map((_, i) => mean(loss.slice(Math.max(0, i - 4), i + 1))); // moving mean of 5 steps
    return [x, loss, avg];
  }, [snap.steps]);
  const tpsData = useMemo<uPlot.AlignedData>(() => [snap.steps.map((s) => s.step + 1), snap.steps.map((s) => (s.k * 1000) / s.wallMs)], [snap.steps]);
  const aucData = useMemo<uPlot.AlignedData>(() => {
    const ev = snap.evals.filter((e) => Number.isFinite(e.auc));
    return [ev.map((e) => e.epoch), ev.map((e) => e.auc), ev.map((e) => e.band.auc.lower), ev.map((e) => e.band.auc.upper)];
  }, [snap.evals]);
  const lastEval = snap.evals[snap.evals.length - 1];
  const rocData = useMemo<uPlot.AlignedData>(() => {
    if (!lastEval) return [[], [], [], []];
    // Put the curve on the band's FPR grid (step interpolation) so one x axis serves all three.
    const grid = lastEval.band.fpr;
    const tpr = grid.map((f) => Math.max(0, ...lastEval.roc.filter((pt) => pt.fpr <= f + 1e-12).map((pt) => pt.tpr)));
    return [grid, tpr, lastEval.band.lower, lastEval.band.upper];
  }, [lastEval]);

  const exportWeights = async () => {
    try {
      const w = await lab.exportWeights();
      download('model.json', w.modelJson, 'application/json');
      download('weights.bin', w.weightsBin);
      setNote('weights exported: model.json + weights.bin (tfjs weights format)');
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  const importWeights = async (files: FileList | null) => {
    const list = Array.from(files ?? []);
    if (list.some((f) => f.name.endsWith('.safetensors'))) {
      // A run trained elsewhere (PyTorch torch.distributed): checkpoint.safetensors [+ metrics.json]
      const ok = await lab.importRun(list.map((f) => ({ name: f.name, blob: f })));
      return setNote(ok ? `imported the run in ${list.map((f) => f.name).join(' + ')}` : (lab.lastError?.message ?? 'import failed'));
    }
    const json = list.find((f) => f.name.endsWith('.json'));
    const bin = list.find((f) => f.name.endsWith('.bin'));
    if (!json || !bin) return setNote('select both model.json and weights.bin');
    try {
      await lab.importWeights(await json.text(), await bin.arrayBuffer());
      setNote(`weights imported from ${json.name}`);
    } catch (e) {
      setNote((e as Error).message);
    }
  };

  return (
    <section id="train" className="panel" data-testid="train-panel">
      <h2>Train</h2>
      <div className="row controls">
        <button data-testid="btn-start" disabled={!canStart} onClick={() => void lab.start()}>Train</button>
        <button data-testid="btn-pause" disabled={st !== 'running'} onClick={() => lab.pause()}>Pause</button>
        <button data-testid="btn-resume" disabled={st !== 'paused'} onClick={() => lab.resume()}>Resume</button>
        <button data-testid="btn-step" disabled={!(st === 'paused' || canStart)} onClick={() => void lab.step()}>Step</button>
        <button data-testid="btn-stop" disabled={!['running', 'paused', 'pausing', 'starting'].includes(st)} onClick={() => void lab.stop()}>Stop</button>
        <span className="state" data-testid="lab-state" data-state={st}>{st}</span>
      </div>
      {!hasData && <p className="muted">Load a data set first.</p>}
      {p && (
        <div className="progress" data-testid="progress">
          <Bar testId="bar-epoch" value={Math.min(p.epochs, p.step / p.stepsPerEpoch)} max={p.epochs} label={`epoch ${Math.min(p.epoch + 1, p.epochs)} of ${p.epochs}`} />
          <Bar testId="bar-step" value={p.step} max={p.total} label={`step ${p.step} of ${p.total} · ${p.stepInEpoch} of ${p.stepsPerEpoch} in this epoch`} />
          <p data-testid="progress-text">
            {fixed(p.msPerStep / 1000, 2)} s/step · <span data-testid="tiles-per-sec">{fixed(p.tilesPerSec, 1)}</span> tiles/s · time left{' '}
            <span data-testid="eta">{duration(p.etaMs)}</span>
            {snap.evalProgress && ` · validating ${snap.evalProgress.done} of ${snap.evalProgress.total} slides`}
          </p>
        </div>
      )}
      {last && (
        <p data-testid="last-step">
          step {last.step + 1}: slide {last.slideId} (label {last.label}), loss <b data-testid="last-loss">{fixed(last.loss, 4)}</b>, P(positive) {fixed(last.prob)}, lr {last.lr.toExponential(2)}
          {lastEval && (
            <>
              {' '}· validation AUC <b data-testid="last-auc">{fixed(lastEval.auc)}</b> (95% CI {fixed(lastEval.band.auc.lower)}–{fixed(lastEval.band.auc.upper)}, {lastEval.slides.length} slides, validated in <span data-testid="last-eval-time">{(lastEval.wallMs / 1000).toFixed(1)} s</span>)
            </>
          )}
        </p>
      )}
      <p className="muted" data-testid="checkpoint-info">
        {snap.checkpoint ? `checkpoint saved at step ${snap.checkpoint.step} (${new Date(snap.checkpoint.savedAt).toLocaleTimeString()}) in this browser` : 'Checkpoints are saved in this browser as training goes.'}
      </p>
      <RankList />
      <div className="charts">
        <Chart testId="chart-loss" title="Training loss per step" data={lossData} axes={[{ label: 'step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}]} series={[{ label: 'step' }, { label: 'loss', stroke: '#c0392b', points: { show: true, size: 4 } }, { label: 'mean of 5', stroke: '#7f8c8d' }]} />
        <Chart testId="chart-auc" title="Validation AUC per epoch (95% bootstrap CI)" data={aucData} scales={{ y: { range: [0, 1] } }} axes={[{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100] }, {}]} series={[{ label: 'epoch' }, { label: 'AUC', stroke: '#2c3e50', points: { show: true, size: 6 } }, { label: 'lower', stroke: '#aab7b8', dash: [4, 4] }, { label: 'upper', stroke: '#aab7b8', dash: [4, 4] }]} />
        <Chart
          testId="chart-roc"
          title={lastEval ? `ROC, epoch ${epochs(lastEval.epoch)} (AUC ${fixed(lastEval.auc)}), 95% band` : 'ROC (after the first epoch)'}
          data={rocData}
          scales={{ x: { time: false, range: [0, 1] }, y: { range: [0, 1] } }}
          bands={[{ series: [3, 2], fill: 'rgba(41,128,185,0.15)' }]}
          series={[{ label: 'FPR' }, { label: 'TPR', stroke: '#2980b9', width: 2 }, { label: 'band low', stroke: 'rgba(41,128,185,0.4)' }, { label: 'band high', stroke: 'rgba(41,128,185,0.4)' }]}
        />
        <Chart testId="chart-tps" title="Tiles per second" data={tpsData} series={[{ label: 'step' }, { label: 'tiles/s', stroke: '#27ae60' }]} />
      </div>
      <div className="row">
        <button data-testid="export-csv" disabled={!snap.steps.length} onClick={() => download('slide-lab-metrics.csv', lab.metricsCsv(), 'text/csv')}>Metrics CSV</button>
        <button data-testid="export-json" disabled={!snap.steps.length} onClick={() => download('slide-lab-metrics.json', JSON.stringify(lab.metricsJson(), null, 1), 'application/json')}>Metrics JSON</button>
        <button data-testid="export-weights" disabled={!snap.steps.length && !snap.checkpoint} onClick={() => void exportWeights()}>Export weights</button>
        <button
          data-testid="btn-evaluate"
          disabled={snap.state !== 'paused'}
          title="Validate the current model now (ROC, AUC and the attention heatmaps), e.g. after importing a run"
          onClick={() => lab.evaluateNow().catch((e: Error) => setNote(e.message))}
        >
          Evaluate now
        </button>
        <label className="button" title="model.json + weights.bin (this lab's export), or a run trained elsewhere: checkpoint.safetensors [+ metrics.json] from python -m slidelab.train">
          Import weights…
          <input type="file" multiple hidden accept=".json,.bin,.safetensors" data-testid="import-weights" onChange={(e) => void importWeights(e.target.files)} />
        </label>
        {note && <span data-testid="train-note">{note}</span>}
      </div>
    </section>
  );
}
