// "Load pretrained encoder…": a file picker and drop zone for .safetensors / PyTorch checkpoints.
// Shows what was detected (family, architecture, parameters, feature size, input normalisation),
// what the file holds that the model does not use, and a memory estimate per micro-batch with a
// warning when one tensor would not fit the adapter's largest storage binding.
import { useEffect, useState } from 'react';
import { useLab } from './store.ts';
import { BUILTIN_MODELS, isBuiltinModel } from '../lab/pretrained.ts';
import { describePretrained, INPUT_NORMS, type PretrainedEncoder as PretrainedInfo } from '../core/pretrained.ts';
import { estimateEncoderMemory } from '../core/memory-estimate.ts';
import { download } from './format.ts';

const ACCEPT = '.safetensors,.bin,.pt,.pth';

/** Bytes in the unit that keeps a small tensor from reading "0.0 MiB". */
function bytes(n: number): string {
  if (n < 2 ** 20) return `${Math.max(1, Math.round(n / 2 ** 10))} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MiB`;
  return `${(n / 2 ** 30).toFixed(1)} GiB`;
}

/** The adapter's maxStorageBufferBindingSize in this page (null: no WebGPU here). */
function useBindingLimit(): number | null {
  const [limit, setLimit] = useState<number | null>(null);
  useEffect(() => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return;
    gpu.requestAdapter().then((a) => a && setLimit(a.limits.maxStorageBufferBindingSize), () => undefined);
  }, []);
  return limit;
}

export function PretrainedEncoderPanel() {
  const { lab, snap } = useLab();
  const [dragging, setDragging] = useState(false);
  const [reading, setReading] = useState(false);
  const limit = useBindingLimit();
  const locked = lab.running || reading;
  const p = snap.pretrained;
  const wanted = snap.config.encoder.pretrained;
  const missing = wanted !== '' && (!p || p.file !== wanted);
  // The last pick's failure, said here too, where the file was picked (the page's error bar may
  // be scrolled away); it goes with that error (dismissed, or replaced by a later one).
  const [failed, setFailed] = useState<string | null>(null);
  const loadError = failed !== null && snap.error?.message === failed ? failed : null;

  const load = async (file: File | undefined) => {
    if (!file) return;
    setReading(true);
    try {
      const loaded = await lab.loadPretrained(file, file.name);
      setFailed(loaded ? null : (lab.lastError?.message ?? null));
    } finally {
      setReading(false);
    }
  };

  return (
    <div
      className={`pretrained${dragging ? ' dragging' : ''}`}
      data-testid="pretrained-panel"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        void load(e.dataTransfer.files[0]);
      }}
    >
      <h3>Encoder weights</h3>
      {missing && isBuiltinModel(wanted) && (
        <p className="muted" data-testid="pretrained-builtin">
          This configuration starts from <b>{wanted}</b>, an encoder that ships with the lab ({BUILTIN_MODELS[wanted]}): it loads with the first step.
        </p>
      )}
      {missing && !isBuiltinModel(wanted) && (
        <p className="warn" data-testid="pretrained-missing">
          This configuration starts from the pretrained encoder <b>{wanted}</b>. A link cannot carry the file: choose it below (or drop it here) before training.
        </p>
      )}
      <label className="button">
        Load pretrained encoder…
        <input
          type="file"
          accept={ACCEPT}
          data-testid="pretrained-input"
          disabled={locked}
          style={{ display: 'none' }}
          onChange={(e) => {
            void load(e.target.files?.[0]);
            e.target.value = ''; // the same file can be picked again (after an error, or to re-map it)
          }}
        />
      </label>{' '}
      {Object.keys(BUILTIN_MODELS).map((name) => (
        <button key={name} data-testid="pretrained-builtin-load" disabled={locked || p?.file === name} title={BUILTIN_MODELS[name]} onClick={() => void lab.loadBuiltin(name).catch((e: Error) => lab.fail(e, 'pretrained encoder'))}>
          Use the built-in SimCLR encoder
        </button>
      ))}{' '}
      <span className="muted">.safetensors (F32, F16, BF16) or a PyTorch checkpoint (.bin, .pt, .pth): timm or Hugging Face ViT, torchvision ViT or ResNet-18/34/50.</span>
      {reading && <p data-testid="pretrained-reading">Reading the file…</p>}
      {loadError && !reading && (
        <p className="error" data-testid="pretrained-error">
          {loadError}
        </p>
      )}
      {!p && !missing && <p className="muted" data-testid="pretrained-none">The encoder starts from the seed's random weights.</p>}
      {p && !missing && <LoadedEncoder p={p} limit={limit} locked={locked} />}
    </div>
  );
}

/** What was loaded: the detection report, the memory estimate and the encoder's own controls. */
function LoadedEncoder({ p, limit, locked }: { p: PretrainedInfo; limit: number | null; locked: boolean }) {
  const { lab, snap } = useLab();
  const enc = snap.config.encoder;
  const memory = estimateEncoderMemory(enc, snap.config.tileSize, snap.config.microBatch);
  const tooBig = limit !== null && memory.largestTensorBytes > limit;
  const exportEncoder = async () => {
    try {
      const out = await lab.exportEncoderSafetensors();
      download(out.name, out.bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      lab.fail(e, 'export');
    }
  };
  return (
    <div data-testid="pretrained-info">
      <p data-testid="pretrained-summary">
        <b>{p.file}</b>
        {describePretrained({ ...p, encoder: enc }).slice(p.file.length)}
      </p>
      {p.report.notes.length > 0 && (
        <ul className="muted" data-testid="pretrained-notes">
          {p.report.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
      {p.report.unused.length > 0 ? (
        <details data-testid="pretrained-unused">
          <summary>{p.report.unused.length} tensors in the file are not used by this encoder</summary>
          <p className="muted">{p.report.unused.join(', ')}</p>
        </details>
      ) : (
        <p className="muted" data-testid="pretrained-unused">Every tensor in the file is used.</p>
      )}
      <p data-testid="pretrained-memory">
        Estimated memory per rank: weights, gradients and AdamW {bytes(memory.parameterBytes)}; activations {bytes(memory.activationBytes)} per micro-batch of {snap.config.microBatch}; largest tensor {bytes(memory.largestTensorBytes)}.
      </p>
      {tooBig && (
        <p className="warn" data-testid="pretrained-too-big">
          One tensor of a micro-batch ({bytes(memory.largestTensorBytes)}) exceeds this adapter's largest storage binding ({bytes(limit)}): lower the micro-batch.
        </p>
      )}
      <div className="row">
        <NormalisationSelect locked={locked} />{' '}
        <button data-testid="pretrained-clear" disabled={locked} onClick={() => lab.clearPretrained()}>
          Use random weights
        </button>{' '}
        <button data-testid="export-encoder-safetensors" onClick={() => void exportEncoder()}>
          Export encoder (.safetensors)
        </button>
      </div>
    </div>
  );
}

/** The input normalisation presets of the known model families (or the config's own values). */
function NormalisationSelect({ locked }: { locked: boolean }) {
  const { lab, snap } = useLab();
  const enc = snap.config.encoder;
  const normName = Object.entries(INPUT_NORMS).find(([, n]) => n.mean === enc.mean && n.std === enc.std)?.[0] ?? 'custom';
  return (
    <label>
      input normalisation{' '}
      <select
        data-testid="pretrained-norm"
        disabled={locked}
        value={normName}
        onChange={(e) => {
          const n = INPUT_NORMS[e.target.value];
          if (n) lab.setSettings({ ...snap.config, encoder: { ...enc, mean: n.mean, std: n.std } }, snap.lab, null);
        }}
      >
        {Object.entries(INPUT_NORMS).map(([k, n]) => (
          <option key={k} value={k}>
            {n.label}
          </option>
        ))}
        {normName === 'custom' && <option value="custom">custom (encoder.mean / encoder.std)</option>}
      </select>
    </label>
  );
}
