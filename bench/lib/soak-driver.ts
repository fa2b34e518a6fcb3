// The Node side of `npm run bench:browser -- --only soak,stop`.
// soak: drives bench/pages/soak.ts (the lab's Trainer, Web Worker ranks, synthetic tiles) for
//   many steps; at each sampled step the page awaits `soakProbe`, which collects garbage through
//   the Chrome DevTools Protocol and reads the page's used JS heap.
// stop: opens the lab itself at a preset, starts training and clicks Stop while a step is in a
//   given phase (decode + forward in the ranks, or their recompute); the figure is the time from
//   the click to the session's 'stopped' state (the workers disposed), measured in the page.
import type { Page } from 'playwright-core';
import type { SoakOptions, SoakResult } from '../pages/soak.ts';

export async function runSoak(page: Page, base: string, o: SoakOptions, timeoutMs: number): Promise<SoakResult & { byStep: Record<string, SoakResult['samples'][number]> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.exposeFunction('soakProbe', async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
    return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN;
  });
  await page.goto(`${base}/bench/pages/soak.html`, { timeout: 300_000 }); // a cold Vite server on a loaded machine is slow
  await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
  const result: SoakResult = await within(page.evaluate((opts) => (window as any).slideLabSoak.run(opts), o), timeoutMs, 'soak');
  // The samples again by step ('step500.main.numTensors' in a bench record), for the README's figures.
  return { ...result, byStep: Object.fromEntries(result.samples.map((x) => [`step${x.step}`, x])) };
}

export interface StopSample {
  /** Where the step was when Stop was clicked: 'forward:start' (ranks decode and encode), 'aggregator:end' (ranks recompute). */
  phase: string;
  /** The step in flight. */
  step: number;
  /** Click to the 'stopped' state ('paused' for a pause@ sample) in ms, measured in the page. */
  ms: number;
  /** The latest checkpoint's step after the stop, and the steps the run had reported. */
  checkpointStep: number | null;
  stepsDone: number;
}

/**
 * Starts the lab at `hash` and clicks Stop at each of `phases` ('name:start|end', one run each):
 * click-to-'stopped' ms; 'pause@name:at' clicks Pause instead (click-to-'paused' ms), then stops.
 */
export async function stopLatency(page: Page, base: string, hash: string, phases: string[], afterSteps: number, timeoutMs: number): Promise<StopSample[]> {
  await page.goto(`${base}/${hash}`, { timeout: 300_000 });
  const ready = () => page.waitForFunction(() => { const lab = (window as any).slideLab; return lab && lab.data && lab.state === 'ready'; }, null, { timeout: 120_000, polling: 250 });
  await ready();
  await page.waitForLoadState('networkidle');
  await ready();
  const out: StopSample[] = [];
  for (const phase of phases) {
    // Vite may reload the page once when the workers pull in dependencies it had not optimised: try again then.
    for (let attempt = 0; ; attempt++) {
      try {
        const sample = await within(page.evaluate(({ phase, afterSteps }) => new Promise<Omit<StopSample, 'phase'>>((resolve, reject) => {
          const lab = (window as any).slideLab;
          const off = lab.on('phase', (e: { step: number; phase: string; at: string }) => {
            const pause = phase.startsWith('pause@');
            const [name, at = 'start'] = phase.replace(/^pause@/, '').split(':');
            if (e.step < afterSteps || e.phase !== name || e.at !== at) return;
            off?.();
            const t0 = performance.now();
            (document.querySelector(pause ? '[data-testid=btn-pause]' : '[data-testid=btn-stop]') as HTMLButtonElement).click();
            const offState = lab.on('state', async (s: string) => {
              if (s !== (pause ? 'paused' : 'stopped')) return;
              offState?.();
              const ms = performance.now() - t0;
              const c = await lab.latestCheckpoint();
              const stepsDone = lab.history.steps.length;
              if (pause) await lab.stop(); // the next sample starts a fresh run
              resolve({ step: e.step, ms, checkpointStep: c ? c.step : null, stepsDone });
            });
          });
          lab.start().catch(reject);
        }), { phase, afterSteps }), timeoutMs, `stop during ${phase}`);
        out.push({ phase, ...sample });
        console.error(`stop during ${phase} of step ${sample.step}: ${sample.ms.toFixed(0)} ms to 'stopped'`);
        break;
      } catch (e) {
        if (attempt >= 2 || !/navigat|context was destroyed|Target closed/i.test((e as Error).message)) throw e;
        await ready();
      }
    }
  }
  return out;
}

function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
