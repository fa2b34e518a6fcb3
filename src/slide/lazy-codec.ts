// What the lazily loaded wasm codecs (JPEG 2000, WebP) share: whether this realm is Node (read the
// wasm file from disk) or a browser (fetch it by URL), and loading a codec once per realm.

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** A codec loader: its module, loaded once per realm; `forget()` makes the next call load afresh. */
export interface CodecLoader<T> {
  (): Promise<T>;
  forget(): void;
}

/** `load` run once per realm and its promise shared; a failed load is forgotten, so a later tile tries again. */
export function loadOnce<T>(load: () => Promise<T>): CodecLoader<T> {
  let shared: Promise<T> | null = null;
  const get = () => {
    if (!shared) {
      shared = load();
      shared.catch(() => (shared = null));
    }
    return shared;
  };
  return Object.assign(get, { forget: () => void (shared = null) });
}
