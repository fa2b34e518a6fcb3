// Gather/scatter made visible: the last step as one lane per rank and one for the main context,
// every phase as a bar, and what crosses between them as arrows with shapes and bytes. Teaching
// mode pauses training after each phase and explains it.
import { useMemo } from 'react';
import { useLab } from './store.ts';
import { buildTimeline, bytesLabel, PHASE_TEXT, type Timeline } from '../lab/timeline.ts';
import { PHASES, type Phase } from '../core/report.ts';

const COLORS: Record<Phase, string> = {
  decode: '#95a5a6', forward: '#3498db', gather: '#9b59b6', aggregator: '#e67e22', scatter: '#8e44ad', recompute: '#2980b9', reduce: '#16a085', optimizer: '#c0392b',
};

function TimelineSvg({ tl }: { tl: Timeline }) {
  const W = 900, laneH = 46, left = 90, top = 24;
  const H = top + tl.lanes.length * laneH + 10;
  const sx = (ms: number) => left + ((W - left - 10) * ms) / Math.max(tl.totalMs, 1e-6);
  const laneY = (lane: 'main' | number) => top + tl.lanes.indexOf(lane) * laneH;
  return (
    <svg viewBox={`0 0 ${W} ${H}`} className="timeline" data-testid="timeline" data-step={tl.step} role="img" aria-label={`timeline of step ${tl.step + 1}`}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" fill="#555" />
        </marker>
      </defs>
      {tl.lanes.map((lane) => (
        <g key={String(lane)} data-testid={`lane-${lane}`}>
          <text x={4} y={laneY(lane) + laneH / 2} className="lane-label">{lane === 'main' ? 'main' : `rank ${lane}`}</text>
          <line x1={left} x2={W - 10} y1={laneY(lane) + laneH / 2} y2={laneY(lane) + laneH / 2} stroke="#eee" />
        </g>
      ))}
      {tl.segments.map((s, i) => (
        <g key={i} data-testid={`seg-${s.lane}-${s.phase}`} data-ms={s.ms.toFixed(2)}>
          <rect x={sx(s.start)} y={laneY(s.lane) + 10} width={Math.max(3, sx(s.start + s.ms) - sx(s.start))} height={laneH - 20} fill={COLORS[s.phase]} rx={2}>
            <title>{`${s.lane === 'main' ? 'main' : `rank ${s.lane}`} ${s.phase}: ${s.ms.toFixed(1)} ms`}</title>
          </rect>
        </g>
      ))}
      {tl.arrows.map((a, i) => {
        const y1 = laneY(a.from) + laneH / 2, y2 = laneY(a.to) + laneH / 2;
        const x = sx(a.at) + (i % 4) * 4;
        return (
          <g key={`a${i}`} data-testid={`arrow-${a.phase}-${a.from}-${a.to}`}>
            <line x1={x} x2={x} y1={y1 + (y2 > y1 ? 8 : -8)} y2={y2 + (y2 > y1 ? -8 : 8)} stroke="#555" markerEnd="url(#arrow)" />
            <text x={x + 4} y={(y1 + y2) / 2 + (a.phase === 'reduce' ? -8 : a.phase === 'optimizer' ? 8 : 0)} textAnchor={a.phase === 'reduce' || a.phase === 'optimizer' ? 'end' : 'start'} dx={a.phase === 'reduce' || a.phase === 'optimizer' ? -8 : 0} className="arrow-label">{`${a.phase} ${a.shape} · ${bytesLabel(a.bytes)}`}</text>
          </g>
        );
      })}
    </svg>
  );
}

export function TimelinePanel() {
  const { lab, snap, store } = useLab();
  const last = snap.steps[snap.steps.length - 1];
  const params = snap.ranks[0]?.params ?? 0;
  const tl = useMemo(() => (last && last.perRank.length ? buildTimeline(last, params) : null), [last, params]);
  const current = snap.phases[snap.phases.length - 1];
  const waiting = current?.waiting;

  return (
    <section id="timeline" className="panel" data-testid="timeline-panel">
      <h2>Gather / scatter</h2>
      <div className="row">
        <label>
          <input
            type="checkbox"
            data-testid="teaching-toggle"
            checked={snap.teaching}
            onChange={(e) => {
              lab.setTeaching(e.target.checked);
              store.refresh();
            }}
          />{' '}
          Teaching mode: pause after every phase and explain it
        </label>
        {waiting && (
          <button data-testid="teach-next" onClick={() => lab.continuePhase()}>
            Next phase
          </button>
        )}
      </div>
      {snap.teaching && current && (
        <div className="teach" data-testid="teach-text" data-phase={current.phase}>
          <b>
            Step {current.step + 1}, {current.phase}
            {current.shape ? ` — ${current.shape}` : ''}
            {current.bytes ? `, ${bytesLabel(current.bytes)}` : ''}:
          </b>{' '}
          {PHASE_TEXT[current.phase]}
        </div>
      )}
      {snap.phases.length > 0 && (
        <p className="muted" data-testid="live-phases">
          step in flight: {snap.phases.filter((p) => p.at === 'end').map((p) => p.phase).join(' → ')}
        </p>
      )}
      {tl ? (
        <>
          <p className="muted">
            Step {tl.step + 1}: K = {last.k} tiles over {last.ranks} ranks, D = {last.d}; {tl.totalMs.toFixed(0)} ms on the critical path; replica drift {last.replicaDrift.toExponential(1)}.
          </p>
          <TimelineSvg tl={tl} />
          <table className="arrows" data-testid="arrow-table">
            <thead>
              <tr>
                <th>phase</th>
                <th>from → to</th>
                <th>tensor</th>
                <th>bytes</th>
                <th>ms (main / slowest rank)</th>
              </tr>
            </thead>
            <tbody>
              {PHASES.map((p) => {
                const arrows = tl.arrows.filter((a) => a.phase === p);
                const segs = tl.segments.filter((s) => s.phase === p);
                const mainMs = segs.find((s) => s.lane === 'main')?.ms;
                const rankMs = Math.max(0, ...segs.filter((s) => s.lane !== 'main').map((s) => s.ms));
                return (
                  <tr key={p}>
                    <td>{p}</td>
                    <td>{arrows.length ? arrows.map((a) => `${a.from === 'main' ? 'main' : `rank ${a.from}`} → ${a.to === 'main' ? 'main' : `rank ${a.to}`}`).join(', ') : '–'}</td>
                    <td>{arrows[0]?.shape ?? '–'}</td>
                    <td>{arrows.length ? arrows.map((a) => bytesLabel(a.bytes)).join(' + ') : '–'}</td>
                    <td>
                      {mainMs !== undefined ? mainMs.toFixed(1) : '–'} / {segs.some((s) => s.lane !== 'main') ? rankMs.toFixed(1) : '–'}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <ul className="legend">
            {PHASES.map((p) => (
              <li key={p}>
                <i style={{ background: COLORS[p] }} /> <b>{p}</b>: {PHASE_TEXT[p]}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p className="muted">Train a step to see its timeline.</p>
      )}
    </section>
  );
}
