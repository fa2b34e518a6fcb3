// Finding the state dict inside a checkpoint and taking off the prefixes every name shares.
// Pure functions over the unpickled tree (Maps, arrays, values) and name -> tensor maps.

/** Keys a training script nests its state dict under, most specific first. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'teacher', 'student', 'module', 'net'];

/** Prefixes (DataParallel's 'module.', a backbone wrapper's 'backbone.') stripped when every name has one. */
const SHARED_PREFIXES = ['module.', 'backbone.'];

/** Most levels of nesting followed before giving up (checkpoints nest one or two). */
const MAX_DEPTH = 8;

const listKeys = (keys: unknown[]): string => {
  const shown = keys.slice(0, 8).map((k) => `'${String(k)}'`);
  return shown.join(', ') + (keys.length > 8 ? `, ... (${keys.length} in all)` : '');
};

/**
 * The dict of tensors in an unpickled checkpoint: the root itself if it holds tensors, else the
 * value under a known wrapper key (or the only entry with tensors somewhere below it), repeatedly.
 * Returns no `dict` but a reason when there is none. Notes say what was unwrapped and which
 * non-tensor entries were ignored.
 */
export function findStateDict(
  root: unknown,
  isTensor: (x: unknown) => boolean,
): { dict?: Map<unknown, unknown>; notes: string[]; reason?: string } {
  const notes: string[] = [];
  const holdsTensors = tensorSearch(isTensor);
  let node = root;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    if (!(node instanceof Map)) {
      return { notes, reason: `the checkpoint holds no dict of tensors (found ${describe(node)})` };
    }
    if ([...node.values()].some(isTensor)) {
      const ignored = [...node].filter(([, v]) => !isTensor(v)).map(([k]) => k);
      if (ignored.length) notes.push(`ignored non-tensor entries ${listKeys(ignored)}`);
      return { dict: node, notes };
    }
    const map = node;
    const withTensors = [...map.keys()].filter((k) => holdsTensors(map.get(k)));
    const key = WRAPPER_KEYS.find((k) => withTensors.includes(k)) ?? (withTensors.length === 1 ? withTensors[0] : undefined);
    if (key === undefined) {
      const why = withTensors.length ? `several entries hold tensors (${listKeys(withTensors)})` : 'no entry holds tensors';
      return { notes, reason: `could not find the state dict: ${why}; the keys are ${listKeys([...map.keys()])}` };
    }
    const others = [...map.keys()].filter((k) => k !== key);
    notes.push(`nested under '${String(key)}'` + (others.length ? `; ignored ${listKeys(others)}` : ''));
    node = map.get(key);
  }
  return { notes, reason: `could not find the state dict within ${MAX_DEPTH} levels of nesting` };
}

/**
 * Whether a value is a dict with tensors somewhere below it. Remembers each dict's answer, so
 * shared or cyclic structures (a pickle can build both) cost one visit per dict.
 */
function tensorSearch(isTensor: (x: unknown) => boolean): (v: unknown) => boolean {
  const memo = new Map<Map<unknown, unknown>, boolean>();
  const within = (v: unknown, depth: number): boolean => {
    if (!(v instanceof Map) || depth > MAX_DEPTH) return false;
    const known = memo.get(v);
    if (known !== undefined) return known;
    memo.set(v, false); // a cycle back to this dict finds nothing new
    const found = [...v.values()].some((child) => isTensor(child) || within(child, depth + 1));
    memo.set(v, found);
    return found;
  };
  return (v) => within(v, 0);
}

function describe(v: unknown): string {
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v === null) return 'None';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * Takes 'module.' and 'backbone.' off every name while every name starts with one of them (and
 * no name would become empty). Returns the renamed map and a note when anything was stripped.
 */
export function stripSharedPrefixes<T>(tensors: Map<string, T>): { tensors: Map<string, T>; notes: string[] } {
  const names = [...tensors.keys()];
  let stripped = '';
  for (;;) {
    const rest = names.map((n) => n.slice(stripped.length));
    const prefix = SHARED_PREFIXES.find((p) => rest.length > 0 && rest.every((n) => n.startsWith(p) && n.length > p.length));
    if (!prefix) break;
    stripped += prefix;
  }
  if (!stripped) return { tensors, notes: [] };
  const renamed = new Map([...tensors].map(([n, t]) => [n.slice(stripped.length), t] as const));
  return { tensors: renamed, notes: [`stripped prefix '${stripped}' from every name`] };
}
