// The one error every weight-file reader throws: which file, and why, on one line.

export class WeightFileError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string) {
    // Reasons may quote names or parser messages from the file; keep the message on one line.
    const oneLine = reason.replace(/\s*[\r\n]+\s*/g, ' ');
    super(`${file}: ${oneLine}`);
    this.name = 'WeightFileError';
    this.file = file;
    this.reason = oneLine;
  }
}

/**
 * Runs a reader step and turns anything unexpected (a Blob that cannot be read, an allocation
 * that fails) into a WeightFileError, so callers see one error type.
 */
export async function guard<T>(file: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new WeightFileError(file, `could not read the file (${what})`);
  }
}
