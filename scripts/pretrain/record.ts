// Adds what the pipeline knows (the slides it generated, the time of each stage, the probe) to the
// model's json that pretrain.py wrote. Used by run.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ProbeResult } from './probe.ts';

export interface PipelineRecord {
  command: string;
  slides: { seed: number; count: number; lesionFraction: number; tissueTiles: number; note: string };
  seconds: { slides: number; windows: number; pretrain: number; total: number };
}

/** Merges `pipeline` (and, when given, the probe's rows in short form) into the json at `path`. */
export function recordRun(path: string, pipeline: PipelineRecord, probe?: { demo: string; rows: { name: string; dim: number; result: ProbeResult }[] }): void {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  doc.pipeline = pipeline;
  if (probe) {
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    doc.probe = {
      demo: probe.demo,
      how: 'scripts/pretrain/probe.ts: frozen features through loadPretrained -> encoderForward on the demo tiles as the lab reads them; logistic probe trained on the train slides, AUCs on the validation slides (docs/PRETRAINING.md)',
      rows: probe.rows.map(({ name, dim, result: r }) => ({
        name, dim, tileAuc: r3(r.tileAuc), slideAuc: r3(r.slideAuc), fewShot: r.fewShot.map((f) => ({ k: f.k, mean: r3(f.mean), min: r3(f.min) })),
        knnPurity: r3(r.knnPurity), knnChance: r3(r.knnChance), anomalyAuc: r3(r.anomalyAuc), constantFeatures: r.constantFeatures,
      })),
    };
  }
  writeFileSync(path, JSON.stringify(doc, null, 1) + '\n');
}
