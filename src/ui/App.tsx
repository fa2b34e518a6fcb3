// The lab: one page of panels over one LabSession. The URL hash holds the whole configuration;
// opening a link (or a preset) applies it, and changes write it back.
import { useEffect, useState } from 'react';
import { useLab } from './store.ts';
import { DataPanel } from './DataPanel.tsx';
import { SetupPanel } from './SetupPanel.tsx';
import { TrainPanel } from './TrainPanel.tsx';
import { TimelinePanel } from './TimelinePanel.tsx';
import { EquivalencePanel } from './EquivalencePanel.tsx';
import { AttentionPanel } from './AttentionPanel.tsx';
import { ExperimentsPanel } from './ExperimentsPanel.tsx';
import { ResumeBanner } from './ResumeBanner.tsx';
import { findPreset } from '../lab/presets.ts';

const SECTIONS = ['data', 'setup', 'train', 'timeline', 'equivalence', 'attention', 'experiments'];

export function App() {
  const { lab, snap, store } = useLab();
  const [viewing, setViewing] = useState<string | null>(null);
  const [linkError, setLinkError] = useState<string | null>(null);
  const link = snap.hash || '#data=demo';

  // Link -> session (hash changes from preset links, pasted URLs, back/forward).
  useEffect(() => {
    const onHash = () => {
      if (location.hash === link) return;
      try {
        const before = lab.options.data;
        lab.applyHash(location.hash);
        setLinkError(null);
        if (lab.options.data !== before || !lab.data) void lab.loadDefaultData();
      } catch (e) {
        setLinkError((e as Error).message);
      }
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, [lab, link]);

  // Session -> link. All-default settings still get a hash, so a reload does not fall back to the preset.
  useEffect(() => {
    if (location.hash !== link) history.replaceState(null, '', link);
  }, [link]);

  useEffect(() => {
    document.getElementById(snap.lab.panel)?.scrollIntoView();
  }, [snap.lab.panel]);

  const preset = lab.preset ? findPreset(lab.preset) : undefined;
  return (
    <div className="app">
      <header>
        <h1>Slide Lab</h1>
        <p className="muted">Train a tile encoder and a slide aggregator end to end, across worker ranks on WebGPU, in this page.</p>
        <nav>
          {SECTIONS.map((s) => (
            <a key={s} href={`#${s}`} onClick={(e) => { e.preventDefault(); document.getElementById(s)?.scrollIntoView({ behavior: 'smooth' }); }}>
              {s}
            </a>
          ))}
        </nav>
        {preset && <p className="preset" data-testid="preset-title">Preset: <b>{preset.title}</b> — {preset.description}</p>}
      </header>
      {(snap.error || linkError) && (
        <div className="lab-error" data-testid="lab-error" role="alert">
          {linkError ? (
            <>
              <b>link:</b> {linkError}
            </>
          ) : (
            <>
              <b>{snap.error!.where}:</b> {snap.error!.message}
            </>
          )}{' '}
          <button onClick={() => { setLinkError(null); lab.clearError(); }}>dismiss</button>
        </div>
      )}
      {snap.notice && (
        <div className="lab-notice" data-testid="lab-notice" role="status">
          {snap.notice} <button onClick={() => store.dismissNotice()}>dismiss</button>
        </div>
      )}
      <ResumeBanner />
      <DataPanel onView={(id) => { setViewing(id); document.getElementById('attention')?.scrollIntoView(); }} />
      <SetupPanel />
      <TrainPanel />
      <TimelinePanel />
      <EquivalencePanel />
      <AttentionPanel focus={viewing} />
      <ExperimentsPanel />
      <footer className="muted">Demo tissue texture: scikit-image IHC sample (BSD-3-Clause). See public/attribution.</footer>
    </div>
  );
}
