// Experiments: the K sweep (final training loss and validation AUC against K) and frozen-encoder
// MIL against end-to-end fine-tuning from the same seed; each a chart, a table and exports.
import { useMemo } from 'react';
import type uPlot from 'uplot';
import { useLab } from './store.ts';
import { Chart } from './Chart.tsx';
import { download, duration, fixed } from './format.ts';
import { experimentCsv, type ExperimentRow } from '../lab/experiments.ts';
import { PaperFiguresPanel } from './PaperFiguresPanel.tsx';

function Table({ rows, testId }: { rows: ExperimentRow[]; testId: string }) {
  return (
    <table data-testid={testId}>
      <thead>
        <tr>
          <th>run</th>
          <th>K</th>
          <th>steps</th>
          <th>first loss</th>
          <th>final train loss</th>
          <th>val AUC (95% CI)</th>
          <th>tiles/s</th>
          <th>time</th>
          <th>workers</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.variant} data-testid="exp-row">
            <td>{r.variant}</td>
            <td>{r.k}</td>
            <td>{r.steps}</td>
            <td>{fixed(r.firstLoss)}</td>
            <td>{fixed(r.finalTrainLoss)}</td>
            <td>
              {fixed(r.auc)} ({fixed(r.aucLower, 2)}–{fixed(r.aucUpper, 2)})
            </td>
            <td>{fixed(r.tilesPerSec, 1)}</td>
            <td>{duration(r.wallMs)}</td>
            <td title="warm: this run reused the rank workers (and their WebGPU warm-up) of the run before">{r.reusedRanks ? 'warm' : 'started'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Exports({ name, rows }: { name: string; rows: ExperimentRow[] }) {
  return (
    <>
      <button data-testid={`export-${name}-csv`} onClick={() => download(`${name}.csv`, experimentCsv(rows), 'text/csv')}>Export CSV</button>
      <button data-testid={`export-${name}-json`} onClick={() => download(`${name}.json`, JSON.stringify(rows, null, 1), 'application/json')}>Export JSON</button>
    </>
  );
}

export function ExperimentsPanel() {
  const { lab, snap } = useLab();
  const sweep = snap.experiments['k-sweep'] ?? [];
  const fe = snap.experiments['frozen-vs-e2e'] ?? [];
  const running = snap.experiment?.running ?? false;
  const can = !lab.running && Boolean(snap.data?.entries.length);
  const steps = snap.lab.expSteps ? `${snap.lab.expSteps} steps` : `${snap.config.epochs} epochs`;

  const sweepData = useMemo<uPlot.AlignedData>(() => [sweep.map((r) => r.k), sweep.map((r) => r.finalTrainLoss), sweep.map((r) => r.auc)], [sweep]);
  const feData = useMemo<uPlot.AlignedData>(() => {
    const n = Math.max(0, ...fe.map((r) => r.losses.length));
    return [Array.from({ length: n }, (_, i) => i + 1), ...fe.map((r) => Array.from({ length: n }, (_, i) => r.losses[i] ?? null))] as uPlot.AlignedData;
  }, [fe]);

  return (
    <section id="experiments" className="panel" data-testid="experiments-panel">
      <h2>Experiments</h2>
      <div className="row">
        <button data-testid="run-ksweep" disabled={!can} onClick={() => void lab.runExperiment('k-sweep')}>
          K sweep (K = {snap.lab.sweep.join(', ')}; {steps} each)
        </button>
        <button data-testid="run-frozen" disabled={!can} onClick={() => void lab.runExperiment('frozen-vs-e2e')}>
          Frozen vs end to end ({steps} each)
        </button>
        {running && <button data-testid="exp-cancel" onClick={() => lab.cancelBusy()}>Cancel</button>}
        {snap.experiment && <span data-testid="exp-status">{snap.experiment.status}</span>}
      </div>
      {sweep.length > 0 && (
        <div className="exp">
          <h3>More tiles per slide</h3>
          <Chart
            testId="chart-ksweep"
            title="Final training loss and validation AUC against K"
            data={sweepData}
            scales={{ x: { time: false }, auc: { range: [0, 1] } }}
            axes={[{ label: 'K', incrs: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] }, { label: 'loss' }, { scale: 'auc', side: 1, label: 'AUC', grid: { show: false } }]}
            series={[{ label: 'K' }, { label: 'final train loss', stroke: '#c0392b', points: { show: true, size: 7 } }, { label: 'val AUC', scale: 'auc', stroke: '#2c3e50', points: { show: true, size: 7 } }]}
          />
          <Table rows={sweep} testId="ksweep-table" />
          <Exports name="k-sweep" rows={sweep} />
        </div>
      )}
      {fe.length > 0 && (
        <div className="exp">
          <h3>Frozen encoder vs end to end</h3>
          <Chart testId="chart-frozen" title="Training loss per step" data={feData} series={[{ label: 'step' }, ...fe.map((r, i) => ({ label: r.variant, stroke: i ? '#c0392b' : '#7f8c8d' }))]} />
          <Table rows={fe} testId="frozen-table" />
          <Exports name="frozen-vs-end-to-end" rows={fe} />
        </div>
      )}
      <PaperFiguresPanel />
    </section>
  );
}
