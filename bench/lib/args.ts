// Command-line checks shared by the benchmark entry points: a bad flag exits 2 with one line that
// names it and what it takes.
export interface ArgCheckers<K extends string> {
  fail(message: string): never;
  /** The flag as a positive integer. */
  int(name: K): number;
  /** The flag as a comma-separated list of positive integers. */
  ints(name: K): number[];
}

/** `usage`, when given, follows the one-line message (as tools/cli.ts's usageExit prints it). */
export function argCheckers<K extends string>(program: string, values: Record<K, unknown>, usage?: string): ArgCheckers<K> {
  const fail = (message: string): never => {
    console.error(usage ? `error: ${message}\n${usage}` : `${program}: ${message}`);
    process.exit(2);
  };
  return {
    fail,
    int(name) {
      const v = Number(values[name]);
      if (!Number.isInteger(v) || v < 1) fail(`--${name} must be a positive integer, got '${values[name]}'`);
      return v;
    },
    ints(name) {
      return String(values[name]).split(',').map((x) => {
        const v = Number(x);
        if (!Number.isInteger(v) || v < 1) fail(`--${name} must be a comma-separated list of positive integers, got '${values[name]}'`);
        return v;
      });
    },
  };
}
