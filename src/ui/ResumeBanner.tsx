// After a reload: offers to resume the run saved in this browser, or to discard it.
import { useEffect, useState } from 'react';
import { useLab } from './store.ts';
import type { Checkpoint } from '../lab/checkpoints.ts';

export function ResumeBanner() {
  const { lab } = useLab();
  const [ckpt, setCkpt] = useState<Checkpoint | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    void lab.latestCheckpoint().then(setCkpt);
  }, [lab]);
  if (!ckpt) return null;
  return (
    <div className="resume" data-testid="resume-banner">
      A run was saved in this browser at step <b data-testid="resume-step">{ckpt.step}</b> of {ckpt.total} ({new Date(ckpt.savedAt).toLocaleString()}, {ckpt.data.kind} data, <code>{ckpt.hash || 'defaults'}</code>).{' '}
      <button
        data-testid="resume-run"
        disabled={busy || lab.running}
        onClick={async () => {
          setBusy(true);
          const ok = await lab.restore(ckpt);
          setBusy(false);
          if (ok) setCkpt(null);
        }}
      >
        Resume it
      </button>{' '}
      <button
        data-testid="discard-run"
        disabled={busy}
        onClick={async () => {
          await lab.discardCheckpoint();
          setCkpt(null);
        }}
      >
        Discard
      </button>
    </div>
  );
}
