// A tiny typed event emitter: `on` returns its own unsubscribe, listeners never throw into the
// emitter (a failing UI listener must not stop training).
export class Emitter<Events extends Record<string, unknown>> {
  private listeners = new Map<keyof Events, Set<(value: never) => void>>();

  on<K extends keyof Events>(kind: K, fn: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(fn as (value: never) => void);
    return () => set!.delete(fn as (value: never) => void);
  }

  emit<K extends keyof Events>(kind: K, value: Events[K]): void {
    for (const fn of this.listeners.get(kind) ?? []) {
      try {
        (fn as (v: Events[K]) => void)(value);
      } catch (e) {
        console.error(`listener of '${String(kind)}' failed`, e);
      }
    }
  }
}
