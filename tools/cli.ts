// One argument helper for the command lines (scripts/ and bench/): `--help` prints the usage and exits 0; an unknown
// or malformed flag prints one line naming it, then the usage, and exits 2 (no stack trace).
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;

export class UsageError extends Error {}

/** Parses argv with `options` (plus --help); on a usage error prints it with the usage and exits 2. */
export function parseCli<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    const parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if ((parsed.values as { help?: boolean }).help) {
      console.log(usage);
      process.exit(0);
    }
    return parsed as { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] };
  } catch (e) {
    return usageExit((e as Error).message.split('\n')[0].replace(/\. To specify a positional.*$/, ''), usage);
  }
}

/** Prints "error: <message>" and the usage, exits 2. */
export function usageExit(message: string, usage?: string): never {
  console.error(`error: ${message}`);
  if (usage ?? currentUsage) console.error(usage ?? currentUsage);
  process.exit(2);
}

let currentUsage = '';
/** Registers the usage printed by usageExit() after parseCli() succeeded. */
export function setUsage(usage: string): void {
  currentUsage = usage;
}

/** A finite number flag (integer when asked); usage error otherwise. */
export function numberOf(value: string | undefined, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) usageExit(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${value}'`);
  return n;
}
