// Typed errors for slide reading. Every failure a user can cause (a bad file, an unsupported
// codec, a missing tile table) becomes a SlideError naming the file and the reason, so the UI and
// the CLI print one line instead of a stack trace.

export type SlideErrorCode =
  | 'not-found'
  | 'not-tiff'
  | 'truncated'
  | 'corrupt'
  | 'unsupported'
  | 'absurd-dimensions'
  | 'unknown-resolution'
  | 'aborted'
  | 'io'
  | 'invalid-argument';

export class SlideError extends Error {
  override readonly name = 'SlideError';
  constructor(
    /** The file (name, path or URL) the error is about. */
    readonly file: string,
    /** What is wrong, in words, without the file name. */
    readonly reason: string,
    readonly code: SlideErrorCode = 'corrupt',
  ) {
    super(`${file}: ${reason}`);
  }
}

export function isAbortError(e: unknown): boolean {
  return (
    (e instanceof SlideError && e.code === 'aborted') ||
    (typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'AbortError')
  );
}

/** Throws a SlideError('aborted') when the signal has fired. Call between awaited steps. */
export function throwIfAborted(signal: AbortSignal | undefined, file: string): void {
  if (signal?.aborted) throw new SlideError(file, 'aborted', 'aborted');
}

/** Wraps any error thrown while reading `file` into a SlideError; SlideErrors pass through. */
export function asSlideError(e: unknown, file: string, context: string): SlideError {
  if (e instanceof SlideError) return e;
  if (isAbortError(e)) return new SlideError(file, 'aborted', 'aborted');
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof RangeError || /outside the bounds|out of bounds|Offset is outside/i.test(message)) {
    return new SlideError(file, `truncated or corrupt file (${context}: ${message})`, 'truncated');
  }
  return new SlideError(file, `corrupt file (${context}: ${message})`, 'corrupt');
}
