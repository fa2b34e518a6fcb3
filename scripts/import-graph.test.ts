// The layering, checked rather than described: an import graph over the repository's TypeScript,
// with the rules of docs/DESIGN.md (layers): the core imports no transport, React or DOM code;
// workers import no benchmark code; and no module imports itself through others (no cycles,
// type-only and dynamic imports included: a cycle of types still ties two modules together).
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const DIRS = ['src', 'workers', 'scripts', 'bench', 'e2e', 'tools'];
const SOURCE = /\.(ts|tsx|mts|mjs)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : files(p);
    return SOURCE.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every import specifier of a file: static, type-only, re-exports and dynamic import(). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"]([^'"]+)['"]/g)) out.push(m[1]);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out;
}

function resolveLocal(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec.replace(/\?.*$/, ''));
  for (const c of [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

const all = DIRS.flatMap((d) => files(join(ROOT, d)));
const rel = (p: string) => relative(ROOT, p);
const graph = new Map<string, { local: string[]; packages: string[] }>();
for (const f of all) {
  const specs = importsOf(readFileSync(f, 'utf8'));
  graph.set(rel(f), {
    local: specs.map((s) => resolveLocal(f, s)).filter((p): p is string => p !== null).map(rel),
    packages: specs.filter((s) => !s.startsWith('.')),
  });
}

/** Strongly connected components with more than one module (or a self-import): the cycles. */
function cycles(): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)?.local ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v)?.local ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const DOM_PACKAGES = /^(react|react-dom|react\/.*|openseadragon|uplot)$/;

describe('the import graph', () => {
  it('reads the repository (sanity: the graph is not empty and knows the core)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('src/core/engine.ts')?.local).toContain('src/core/config.ts');
    expect(importsOf("import type { A } from './a.ts';\nconst m = await import('./b.ts');\nexport { c } from './c.ts';")).toEqual(['./a.ts', './c.ts', './b.ts']);
  });

  it('src/core imports no transport, lab, UI, runtime or React/DOM code, and uses no document or window', () => {
    const bad: string[] = [];
    for (const [f, { local, packages }] of graph) {
      if (!f.startsWith('src/core/') || f.endsWith('.test.ts')) continue;
      for (const t of local) if (!/^src\/(core|kernels)\//.test(t) && !t.startsWith('src/slide/')) bad.push(`${f} -> ${t}`);
      for (const p of packages) if (DOM_PACKAGES.test(p) || p === 'comlink' || p.startsWith('node:')) bad.push(`${f} -> ${p}`);
      if (/\b(document|window)\./.test(readFileSync(join(ROOT, f), 'utf8'))) bad.push(`${f} uses the DOM`);
    }
    expect(bad).toEqual([]);
  });

  it('workers import no benchmark or test code', () => {
    const bad = [...graph].flatMap(([f, { local }]) => (f.startsWith('workers/') ? local.filter((t) => /^(bench|e2e)\//.test(t) || t.endsWith('.test.ts')).map((t) => `${f} -> ${t}`) : []));
    expect(bad).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(cycles()).toEqual([]);
  });

  it('the top-level folders do not import each other in a circle (shared browser helpers live in tools/; unit tests beside src may use the fixture generators in scripts/)', () => {
    const top = (f: string) => (f.startsWith('src/') ? 'src' : f.split('/')[0]);
    const edges = new Set<string>();
    for (const [f, { local }] of graph) {
      if (f.startsWith('src/') && f.endsWith('.test.ts')) continue; // test code is not part of the src layer
      for (const t of local) if (top(f) !== top(t)) edges.add(`${top(f)} -> ${top(t)}`);
    }
    const reach = (from: string, to: string, seen = new Set<string>()): boolean =>
      [...edges].some((e) => {
        const [a, b] = e.split(' -> ');
        if (a !== from || seen.has(b)) return false;
        seen.add(b);
        return b === to || reach(b, to, seen);
      });
    const circular = [...edges].filter((e) => {
      const [a, b] = e.split(' -> ');
      return reach(b, a);
    });
    expect(circular).toEqual([]);
    expect(edges.has('src -> tools') || edges.has('src -> e2e') || edges.has('src -> bench') || edges.has('src -> scripts')).toBe(false);
  });
});
