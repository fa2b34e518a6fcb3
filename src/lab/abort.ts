// Cancellation helpers: every long lab call takes an AbortSignal. A worker that is busy in a long
// call cannot be interrupted, so `abortable` stops *waiting* for it at once; the caller then
// terminates (or resets) the worker.
import { abortError } from '../core/abort.ts';
import { RankError } from './guard.ts';

export { abortError, throwIfAborted } from '../core/abort.ts';

/** An AbortError, or a rank call that failed because its caller aborted. */
export const isAbort = (e: unknown): boolean => (e as { name?: string })?.name === 'AbortError' || (e instanceof RankError && /abort/i.test(e.reason));

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it aborts (whatever comes
 * first). A late rejection of `work` is swallowed: nobody is waiting for it any more.
 */
export function abortable<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason ?? abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
