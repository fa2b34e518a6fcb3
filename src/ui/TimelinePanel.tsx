// Gather/scatter made visible: the last step as one lane per rank and one for the main context,
// every phase as a bar, and what crosses between them as arrows with shapes and bytes. Teaching
// mode pauses training after each phase and explains it.
import { useMemo } from 'react';
import { useLab } from './store.ts';
import { arrowText, buildTimeline, bytesLabel, estimateTextWidth, PHASE_TEXT, placeArrowLabels, TIMELINE_GEOMETRY, timelineFrame, type Arrow, type Measure, type Timeline } from '../lab/timeline.ts';
import { PHASES, type Phase } from '../core/report.ts';

const COLORS: Record<Phase, string> = {
  decode: '#95a5a6', forward: '#3498db', gather: '#9b59b6', aggregator: '#e67e22', scatter: '#8e44ad', recompute: '#2980b9', reduce: '#16a085', optimizer: '#c0392b',
};

/** Text widths as the browser draws the arrow labels (their CSS font), or the fixed estimate. */
function browserMeasure(): Measure {
  const ctx = typeof document !== 'undefined' ? document.createElement('canvas').getContext('2d') : null;
  if (!ctx) return estimateTextWidth;
  const family = getComputedStyle(document.documentElement).fontFamily || 'system-ui, sans-serif';
  const cache = new Map<string, number>();
  return (text, fontSize) => {
    const key = `${fontSize}|${text}`;
    let w = cache.get(key);
    if (w === undefined) {
      ctx.font = `${fontSize}px ${family}`;
      // A pixel of slack for rounding and hinting.
      w = ctx.measureText(text).width + 1;
      cache.set(key, w);
    }
    return w;
  };
}

/** "ranks 0–7 → main" for the arrow table. */
function routeText(arrows: Arrow[]): string {
  if (!arrows.length) return '–';
  const ranks = arrows.map((a) => (a.from === 'main' ? a.to : a.from) as number);
  const run = ranks.every((r, i) => i === 0 || r === ranks[i - 1] + 1);
  const who = ranks.length === 1 ? `rank ${ranks[0]}` : run && ranks.length > 2 ? `ranks ${ranks[0]}–${ranks[ranks.length - 1]}` : `ranks ${ranks.join(', ')}`;
  return arrows[0].to === 'main' ? `${who} → main` : `main → ${who}`;
}

/** "8 × 256 B = 2.0 KiB" for the arrow table. */
function bytesText(arrows: Arrow[]): string {
  if (!arrows.length) return '–';
  if (arrows.length === 1) return bytesLabel(arrows[0].bytes);
  const total = bytesLabel(arrows.reduce((n, a) => n + a.bytes, 0));
  const alike = arrows.every((a) => a.bytes === arrows[0].bytes);
  return alike ? `${arrows.length} × ${bytesLabel(arrows[0].bytes)} = ${total}` : `${arrows.map((a) => bytesLabel(a.bytes)).join(' + ')} = ${total}`;
}

const laneName = (lane: 'main' | number) => (lane === 'main' ? 'main' : `rank ${lane}`);

function TimelineSvg({ tl }: { tl: Timeline }) {
  const g = TIMELINE_GEOMETRY;
  const measure = useMemo(browserMeasure, []);
  const f = useMemo(() => timelineFrame(tl, g), [tl, g]);
  const placement = useMemo(() => placeArrowLabels(tl, g, measure), [tl, g, measure]);
  const W = g.width, H = f.height;
  const mid = (lane: 'main' | number) => f.laneY(lane) + g.laneH / 2;
  return (
    <svg viewBox={`0 0 ${W} ${H}`} className="timeline" data-testid="timeline" data-step={tl.step} data-labels={placement.labels.length} data-tooltip-only={placement.tooltipOnly.length} role="img" aria-label={`timeline of step ${tl.step + 1}`}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" fill="#555" />
        </marker>
      </defs>
      {tl.lanes.map((lane) => (
        <g key={String(lane)} data-testid={`lane-${lane}`}>
          <text x={4} y={mid(lane)} dominantBaseline="central" className="lane-label">{laneName(lane)}</text>
          <line x1={g.left} x2={W - g.right} y1={mid(lane)} y2={mid(lane)} stroke="#eee" />
        </g>
      ))}
      {tl.segments.map((s, i) => (
        <g key={i} data-testid={`seg-${s.lane}-${s.phase}`} data-ms={s.ms.toFixed(2)}>
          <rect x={f.sx(s.start)} y={f.laneY(s.lane) + g.inset} width={Math.max(3, f.sx(s.start + s.ms) - f.sx(s.start))} height={g.laneH - 2 * g.inset} fill={COLORS[s.phase]} rx={2}>
            <title>{`${laneName(s.lane)} ${s.phase}: ${s.ms.toFixed(1)} ms`}</title>
          </rect>
        </g>
      ))}
      {tl.arrows.map((a, i) => {
        const y1 = mid(a.from), y2 = mid(a.to);
        const x = f.arrowX(i);
        const down = y2 > y1;
        return (
          <g key={`a${i}`} data-testid={`arrow-${a.phase}-${a.from}-${a.to}`} className="arrow">
            <title>{arrowText(a)}</title>
            <line x1={x} x2={x} y1={y1 + (down ? 8 : -8)} y2={y2 + (down ? -8 : 8)} stroke="#555" markerEnd="url(#arrow)" />
            <line x1={x} x2={x} y1={y1} y2={y2} stroke="transparent" strokeWidth={6} className="arrow-hit" />
          </g>
        );
      })}
      <g className="arrow-labels">
        {placement.labels.map((l) => (
          <text key={l.arrow} x={l.x} y={l.y} textAnchor={l.anchor} dominantBaseline="central" fontSize={g.fontSize} className="arrow-label" data-phase={tl.arrows[l.arrow].phase} data-arrows={l.arrows.length}>
            {l.text}
            {l.text !== l.full && <title>{l.full}</title>}
          </text>
        ))}
      </g>
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
  const ended = snap.phases.filter((p) => p.at === 'end');

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
      {ended.length > 0 && (
        <p className="muted" data-testid="live-phases">
          step in flight: {ended.map((p) => p.phase).join(' → ')}
        </p>
      )}
      {tl ? (
        <>
          <p className="muted">
            Step {tl.step + 1}: K = {last.k} tiles over {last.ranks} ranks, D = {last.d}; {tl.totalMs >= 10_000 ? `${(tl.totalMs / 1000).toFixed(1)} s` : `${tl.totalMs.toFixed(0)} ms`} on the critical path; replica drift {last.replicaDrift.toExponential(1)}.
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
                    <td>{routeText(arrows)}</td>
                    <td>{arrows.length ? [...new Set(arrows.map((a) => a.shape))].join(' / ') : '–'}</td>
                    <td>{bytesText(arrows)}</td>
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
