// Setup: the engine's config as a form generated from its schema, with each validation message
// next to its field; and the ranks with their WebGPU adapters, or a visible CPU-fallback notice.
import { useEffect, useMemo, useState } from 'react';
import { ConfigError, parseConfig } from '../core/config.ts';
import { useLab } from './store.ts';
import { configFields, draftOf, FIELD_META, groupFields, HELP, labelOf, rawFromDraft, relevantFor, type Field } from './config-fields.ts';
import { MAIN_BACKENDS, PRESETS, type MainBackend } from '../lab/presets.ts';
import { PretrainedEncoderPanel } from './PretrainedEncoder.tsx';

export function SetupPanel() {
  const { lab, snap } = useLab();
  const fields = useMemo(configFields, []);
  const groups = useMemo(() => groupFields(fields), [fields]);
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [applied, setApplied] = useState(false);
  const [showAll, setShowAll] = useState(false);
  const locked = lab.running;

  useEffect(() => {
    setDraft(draftOf(fields, snap.config));
    setProblems({});
  }, [snap.config, fields]);

  // Which fields show follows the kind picked in the form, before Apply.
  const kind = draft['encoder.kind'] ?? snap.config.encoder.kind;
  const otherKind = fields.filter((f) => !relevantFor(f.path, kind)).length;
  const paths = new Set(fields.map((f) => f.path));
  const general = Object.entries(problems).filter(([k]) => !paths.has(k));

  const apply = () => {
    // Every field goes in, shown or hidden: hiding a field never drops its value.
    try {
      const cfg = parseConfig(rawFromDraft(fields, draft));
      lab.setSettings(cfg, snap.lab, null);
      setProblems({});
      setApplied(true);
      setTimeout(() => setApplied(false), 1500);
    } catch (e) {
      if (e instanceof ConfigError) setProblems(Object.fromEntries(e.problems.map((p) => [p.field, p.message])));
      else setProblems({ '(config)': (e as Error).message });
    }
  };

  const shown = (f: Field) => showAll || relevantFor(f.path, kind) || f.path in problems;

  const renderField = (f: Field) => {
    const value = draft[f.path] ?? '';
    const problem = problems[f.path];
    const id = `cfg-${f.path}`;
    const relevant = relevantFor(f.path, kind);
    const set = (v: string) => setDraft({ ...draft, [f.path]: v });
    const label = (
      <label htmlFor={id} title={f.path}>
        {labelOf(f.path)}
      </label>
    );
    const key = (
      <code className="key" title={`config key (URL: #${f.path}=…)`}>
        {f.path}
      </code>
    );
    return (
      <div
        key={f.path}
        className={`field${problem ? ' invalid' : ''}${relevant ? '' : ' other-kind'}${f.kind === 'boolean' ? ' boolean' : ''}`}
        hidden={!shown(f)}
        data-field={f.path}
      >
        {f.kind === 'boolean' ? (
          <div className="field-head">
            <span className="check">
              <input id={id} data-testid={id} type="checkbox" disabled={locked} checked={value === 'true'} onChange={(e) => set(String(e.target.checked))} />
              {label}
            </span>
            {key}
          </div>
        ) : (
          <>
            <div className="field-head">
              {label}
              {key}
            </div>
            {f.kind === 'choice' ? (
              <select id={id} data-testid={id} disabled={locked} value={value} onChange={(e) => set(e.target.value)}>
                {f.choices!.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            ) : (
              <input id={id} data-testid={id} type="text" inputMode={f.path === 'encoder.pretrained' || f.path === 'encoder.mean' || f.path === 'encoder.std' ? 'text' : 'decimal'} disabled={locked} value={value} onChange={(e) => set(e.target.value)} />
            )}
          </>
        )}
        {problem ? (
          <span className="error" data-testid={`problem-${f.path}`}>
            {f.path}: {problem}
          </span>
        ) : HELP[f.path] ? (
          <span className="help">{HELP[f.path]}</span>
        ) : null}
      </div>
    );
  };

  return (
    <section id="setup" className="panel" data-testid="setup-panel">
      <h2>Setup</h2>
      <p className="presets">
        Presets:{' '}
        {PRESETS.map((p) => (
          <a key={p.name} href={`#preset=${p.name}`} title={p.description} data-testid={`preset-${p.name}`}>
            {p.title}
          </a>
        ))}
      </p>
      <p className="muted">
        Link to this configuration: <a data-testid="config-link" href={snap.hash || '#'}>{snap.hash || '(defaults)'}</a>
      </p>
      <PretrainedEncoderPanel />
      <GridChain />
      <form
        className="config-form"
        data-testid="config-form"
        onSubmit={(e) => {
          e.preventDefault();
          apply();
        }}
      >
        {groups.map(({ group, fields: own }) => (
          <fieldset key={group} className="config-group" data-testid={`config-group-${group.toLowerCase()}`}>
            <legend>{group}</legend>
            {group === 'Model' && (
              <div className="row config-toolbar">
                <label className="muted">
                  <input type="checkbox" data-testid="config-show-all" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> Show all encoder fields
                </label>
                <span className="muted" data-testid="config-hidden-note">
                  {showAll ? `(greyed: not used by ${kind})` : `(${otherKind} fields that ${kind} does not use are hidden; their values are kept)`}
                </span>
              </div>
            )}
            <div className="config-grid">
              {sections(own).flatMap(({ title, fields: inSection }) => [
                ...(title ? [<h4 key={`s-${title}`} className="config-section" hidden={!inSection.some(shown)}>{title}</h4>] : []),
                ...inSection.map(renderField),
              ])}
            </div>
          </fieldset>
        ))}
        {general.map(([k, message]) => (
          <p key={k} className="error">
            {k === '(config)' ? message : `${k}: ${message}`}
          </p>
        ))}
        <div className="row">
          <button type="submit" data-testid="apply-config" disabled={locked}>Apply</button>
          {locked && <span className="muted">Stop the run to change the configuration.</span>}
          {applied && <span data-testid="config-applied">applied</span>}
        </div>
      </form>
      <div className="field main-backend" data-testid="main-backend-field">
        <div className="field-head">
          <label htmlFor="main-backend" title="mainBackend">Main context backend</label>
          <code className="key" title="lab option (URL: #mainBackend=…); applies at once">mainBackend</code>
        </div>
        <select
          id="main-backend"
          data-testid="main-backend"
          disabled={locked}
          value={snap.lab.mainBackend}
          onChange={(e) => lab.setSettings(snap.config, { ...snap.lab, mainBackend: e.target.value as MainBackend }, lab.preset)}
        >
          {MAIN_BACKENDS.map((b) => (
            <option key={b}>{b}</option>
          ))}
        </select>
        <span className="help">
          Applies at once. The main context runs only the aggregator. auto = the cpu backend on a software WebGPU adapter (SwiftShader) or with cpu ranks, else WebGPU.
        </span>
      </div>
      <h3>Ranks</h3>
      <RankList />
    </section>
  );
}

const um = (v: number) => String(Math.round(v * 1000) / 1000);
const few = (xs: string[]) => {
  const u = [...new Set(xs)];
  return u.length > 3 ? `${u.slice(0, 3).join(', ')}, …` : u.join(', ');
};

/** The magnification chain: the slides' µm/px -> the level read -> the grid's µm/px and tile -> the model input. */
function GridChain() {
  const { snap } = useLab();
  const g = snap.config.grid;
  const input = snap.config.tileSize;
  const slides = snap.data?.slides.filter((s) => !s.error && s.mpp) ?? [];
  const native = slides.length ? `slides at ${few(slides.map((s) => um(s.mpp!)))} µm/px` : 'slide µm/px (from each file or the manifest)';
  const levels = slides.length ? few(slides.map((s) => `level ${s.level} (${um(s.levelMpp ?? s.mpp!)} µm/px${s.resample ? ', resampled' : ''})`)) : 'the finest level at least as fine as the grid';
  return (
    <p className="grid-chain" data-testid="grid-chain" title="grid.mpp, grid.tile and grid.overlap cut the tiles; tileSize is the encoder's input">
      {native} → {levels} → grid {um(g.mpp)} µm/px, {g.tile} px tiles ({um(g.tile * g.mpp)} µm{g.overlap ? `, overlap ${g.overlap} px` : ''}) → model input {input} px ({um((g.tile * g.mpp) / input)} µm/px)
    </p>
  );
}

/** A group's fields cut where FIELD_META starts a section. */
function sections(fields: Field[]): { title: string | undefined; fields: Field[] }[] {
  const out: { title: string | undefined; fields: Field[] }[] = [];
  for (const f of fields) {
    const title = FIELD_META[f.path]?.section;
    if (title || !out.length) out.push({ title, fields: [] });
    out[out.length - 1].fields.push(f);
  }
  return out;
}

/** The main context's backend, or the setting that will choose it at the first step. */
function MainBackendLine() {
  const { snap } = useLab();
  const m = snap.main;
  return (
    <li data-testid="rank-main" data-backend={m?.backend ?? ''} data-choice={snap.lab.mainBackend}>
      main context (aggregator):{' '}
      {m ? (
        <>
          <b>{m.backend}</b> <span className="muted">— {m.why}</span>
          {m.fallbackReason && <span className="warn"> — fell back to the CPU: {m.fallbackReason}</span>}
        </>
      ) : (
        <span className="muted">chosen at the first step (setting: {snap.lab.mainBackend})</span>
      )}
    </li>
  );
}

export function RankList() {
  const { snap } = useLab();
  if (!snap.ranks.length) {
    return (
      <ul className="ranks" data-testid="ranks">
        <MainBackendLine />
        <li className="muted" data-testid="ranks-none">The {snap.config.ranks} rank workers start with the first training step (or Step).</li>
      </ul>
    );
  }
  return (
    <ul className="ranks" data-testid="ranks">
      <MainBackendLine />
      {snap.ranks.map((r) => (
        <li key={r.rank} data-testid={`rank-${r.rank}`} data-backend={r.backend}>
          rank {r.rank} ({r.runtime}): <b>{r.backend}</b>
          {r.adapter && (
            <span>
              {' '}
              — {[r.adapter.vendor, r.adapter.architecture, r.adapter.device, r.adapter.description].filter(Boolean).join(' · ') || 'adapter without a name'}
              {r.adapter.isFallbackAdapter && <span className="warn"> (software fallback adapter: expect CPU speed)</span>}
            </span>
          )}
          {r.backend === 'cpu' && <span className="warn" data-testid="cpu-fallback"> — running on the CPU backend{r.fallbackReason ? `: ${r.fallbackReason}` : ''}</span>}
          <span className="muted"> · {r.params.toLocaleString()} encoder parameters</span>
        </li>
      ))}
    </ul>
  );
}
