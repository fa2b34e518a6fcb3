// Equivalence: the current model with N ranks beside the single-graph reference, per step: the
// normalised L1 difference of parameters and gradients of the tracked layers and the loss
// difference (the paper's gradient-equivalence figure), with the tolerance line.
import { useMemo } from 'react';
import type uPlot from 'uplot';
import { TOLERANCE } from '../core/equivalence.ts';
import { useLab } from './store.ts';
import { Chart } from './Chart.tsx';
import { download, sci } from './format.ts';
import { toCsv } from '../lab/export.ts';

const PALETTE = ['#c0392b', '#2980b9', '#27ae60', '#8e44ad', '#d35400', '#16a085', '#2c3e50'];
const FLOOR = 1e-12; // log scale: exact zeros are drawn at this floor

export function EquivalencePanel() {
  const { lab, snap } = useLab();
  const { rows, running } = snap.equivalence;
  const layers = rows.length ? Object.keys(rows[0].param) : [];
  const max = rows.length ? Math.max(...rows.flatMap((r) => [r.lossDiff, ...Object.values(r.param), ...Object.values(r.grad)])) : NaN;
  const pass = rows.length > 0 && rows.every((r) => r.pass);

  const { data, series } = useMemo(() => {
    const x = rows.map((r) => r.step + 1);
    const cols: number[][] = [];
    const ser: uPlot.Series[] = [{ label: 'step' }];
    layers.forEach((l, i) => {
      cols.push(rows.map((r) => Math.max(FLOOR, r.param[l])));
      ser.push({ label: `param ${l}`, stroke: PALETTE[i % PALETTE.length], points: { show: true } });
      cols.push(rows.map((r) => Math.max(FLOOR, r.grad[l])));
      ser.push({ label: `grad ${l}`, stroke: PALETTE[i % PALETTE.length], dash: [5, 4], points: { show: true } });
    });
    cols.push(rows.map((r) => Math.max(FLOOR, r.lossDiff)));
    ser.push({ label: '|loss diff|', stroke: '#000', width: 2, points: { show: true } });
    cols.push(rows.map(() => TOLERANCE.grad));
    ser.push({ label: `tolerance ${TOLERANCE.grad}`, stroke: '#e74c3c', dash: [2, 2], width: 2 });
    return { data: [x, ...cols] as uPlot.AlignedData, series: ser };
  }, [rows, layers.join()]);

  const csv = () =>
    toCsv(
      ['ranks', 'step', 'loss_reference', 'loss_ranks', 'loss_diff', ...layers.flatMap((l) => [`param_${l}`, `grad_${l}`]), 'pass'],
      rows.map((r) => [r.ranks, r.step, r.lossReference, r.lossRanks, r.lossDiff, ...layers.flatMap((l) => [r.param[l], r.grad[l]]), r.pass]),
    );

  return (
    <section id="equivalence" className="panel" data-testid="equivalence-panel">
      <h2>Equivalence</h2>
      <p className="muted">
        Trains the current configuration with {snap.config.ranks} worker ranks (gather, scatter, pseudo-loss, summed gradients) and, step by step, the same model in one
        graph in this page with no workers. Both start from the same seed. Tolerances: |loss diff| ≤ {TOLERANCE.loss}, normalised L1 ≤ {TOLERANCE.param}.
      </p>
      <div className="row">
        <button data-testid="run-equivalence" disabled={lab.running || !snap.data} onClick={() => void lab.runEquivalence()}>
          Run {snap.lab.eqSteps} steps
        </button>
        {running && <button onClick={() => lab.cancelBusy()}>Cancel</button>}
        {running && <span data-testid="eq-running">running… {rows.length} of {snap.lab.eqSteps} steps</span>}
        {rows.length > 0 && !running && (
          <span data-testid="eq-status" data-pass={pass} className={pass ? 'ok' : 'error'}>
            {pass ? 'equivalent' : 'NOT equivalent'}: largest difference <b data-testid="eq-max" data-value={max}>{sci(max)}</b>
          </span>
        )}
        {rows.length > 0 && <button onClick={() => download('equivalence.csv', csv(), 'text/csv')}>Export CSV</button>}
      </div>
      {rows.length > 0 && (
        <>
          <Chart testId="chart-equivalence" title="Normalised L1 difference (log scale) and |loss difference| per step" data={data} series={series} scales={{ y: { distr: 3 } }} height={260}
            axes={[{ label: 'step', incrs: [1, 2, 5, 10, 20, 50] }, { label: 'difference', size: 70, values: (_u: unknown, vals: number[]) => vals.map((v) => (v == null ? '' : v.toExponential(0))) }]} />
          <div className="table-wrap">
            <table data-testid="eq-table">
              <thead>
                <tr>
                  <th>step</th>
                  <th>loss (reference)</th>
                  <th>loss (ranks)</th>
                  <th>|diff|</th>
                  {layers.map((l) => (
                    <th key={l}>param / grad {l}</th>
                  ))}
                  <th>pass</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.step} data-testid="eq-row">
                    <td>{r.step + 1}</td>
                    <td>{r.lossReference.toFixed(6)}</td>
                    <td>{r.lossRanks.toFixed(6)}</td>
                    <td>{sci(r.lossDiff)}</td>
                    {layers.map((l) => (
                      <td key={l}>
                        {sci(r.param[l])} / {sci(r.grad[l])}
                      </td>
                    ))}
                    <td className={r.pass ? 'ok' : 'error'}>{r.pass ? 'yes' : 'no'}</td>
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
