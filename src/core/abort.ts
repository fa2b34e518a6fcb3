// Cancellation, the one way: every long call takes an optional AbortSignal and checks it between
// awaited steps. (Slide reading has its own variant that names the file: src/slide/errors.ts.)

export function abortError(reason = 'aborted'): DOMException {
  return new DOMException(reason, 'AbortError');
}

/** Throws the signal's reason (or an AbortError) once it has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? abortError();
}
