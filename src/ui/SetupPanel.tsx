// Setup: the engine's config as a form generated from its schema, with each validation message
// next to its field; and the ranks with their WebGPU adapters, or a visible CPU-fallback notice.
import { useEffect, useMemo, useState } from 'react';
import { ConfigError, parseConfig } from '../core/config.ts';
import { useLab } from './store.ts';
import { configFields, getPath, HELP, setPath } from './config-fields.ts';
import { MAIN_BACKENDS, PRESETS, type MainBackend } from '../lab/presets.ts';
import { PretrainedEncoderPanel } from './PretrainedEncoder.tsx';

export function SetupPanel() {
  const { lab, snap } = useLab();
  const fields = useMemo(configFields, []);
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [applied, setApplied] = useState(false);
  const locked = lab.running;

  useEffect(() => {
    setDraft(Object.fromEntries(fields.map((f) => [f.path, String(getPath(snap.config, f.path))])));
    setProblems({});
  }, [snap.config, fields]);

  const apply = () => {
    let raw: unknown = {};
    for (const f of fields) raw = setPath(raw as Record<string, unknown>, f.path, draft[f.path]);
    try {
      const cfg = parseConfig(raw);
      lab.setSettings(cfg, snap.lab, null);
      setProblems({});
      setApplied(true);
      setTimeout(() => setApplied(false), 1500);
    } catch (e) {
      if (e instanceof ConfigError) setProblems(Object.fromEntries(e.problems.map((p) => [p.field, p.message])));
      else setProblems({ '(config)': (e as Error).message });
    }
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
      <form
        className="config-form"
        data-testid="config-form"
        onSubmit={(e) => {
          e.preventDefault();
          apply();
        }}
      >
        {fields.map((f) => {
          const value = draft[f.path] ?? '';
          const problem = problems[f.path];
          const id = `cfg-${f.path}`;
          return (
            <div key={f.path} className={`field${problem ? ' invalid' : ''}`}>
              <label htmlFor={id}>{f.path}</label>
              {f.kind === 'boolean' ? (
                <input id={id} data-testid={id} type="checkbox" disabled={locked} checked={value === 'true'} onChange={(e) => setDraft({ ...draft, [f.path]: String(e.target.checked) })} />
              ) : f.kind === 'choice' ? (
                <select id={id} data-testid={id} disabled={locked} value={value} onChange={(e) => setDraft({ ...draft, [f.path]: e.target.value })}>
                  {f.choices!.map((c) => (
                    <option key={c}>{c}</option>
                  ))}
                </select>
              ) : (
                <input id={id} data-testid={id} type="text" inputMode="decimal" disabled={locked} value={value} onChange={(e) => setDraft({ ...draft, [f.path]: e.target.value })} />
              )}
              {problem ? <span className="error" data-testid={`problem-${f.path}`}>{f.path}: {problem}</span> : HELP[f.path] ? <span className="help">{HELP[f.path]}</span> : null}
            </div>
          );
        })}
        {problems['(config)'] && <p className="error">{problems['(config)']}</p>}
        <div className="row">
          <button type="submit" data-testid="apply-config" disabled={locked}>Apply</button>
          {locked && <span className="muted">Stop the run to change the configuration.</span>}
          {applied && <span data-testid="config-applied">applied</span>}
        </div>
      </form>
      <div className="field" data-testid="main-backend-field">
        <label htmlFor="main-backend">main context backend</label>
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
          The main context runs only the aggregator. auto = the cpu backend on a software WebGPU adapter (SwiftShader) or with cpu ranks, else WebGPU.
        </span>
      </div>
      <h3>Ranks</h3>
      <RankList />
    </section>
  );
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
