// A tiny ZIP writer for tests: stored entries (or a claimed compression method, for refusal
// tests), optionally ZIP64 records and torch-style alignment padding in the local headers.

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** compression method written in the headers; the data is written as given (default 0, stored) */
  method?: number;
}

export interface ZipOptions {
  /** write the ZIP64 end of central directory record and locator, and 64-bit offsets in an extra field */
  zip64?: boolean;
  /** pad each local header's extra field (id 'FB', as torch does) so data starts at a multiple of this */
  align?: number;
  comment?: string;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Appends little-endian fields to a growing byte list. */
class Bytes {
  readonly parts: number[] = [];
  u16(v: number) {
    this.parts.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number) {
    return this.u16(v & 0xffff).u16(Math.floor(v / 0x10000) & 0xffff);
  }
  u64(v: number) {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  raw(bytes: Uint8Array | number[]) {
    for (const b of bytes) this.parts.push(b);
    return this;
  }
  get length() {
    return this.parts.length;
  }
}

export function writeZip(entries: ZipInput[], options: ZipOptions = {}): Uint8Array<ArrayBuffer> {
  const { zip64 = false, align = 0 } = options;
  const text = new TextEncoder();
  const out = new Bytes();
  const central = new Bytes();
  for (const entry of entries) {
    const name = text.encode(entry.name);
    const offset = out.length;
    const crc = crc32(entry.data);
    // local header: signature, version, flags, method, time, date, crc, sizes, name and extra lengths
    let pad = 0;
    if (align) pad = (align - ((offset + 30 + name.length + 4) % align)) % align;
    const extra = align ? new Bytes().u16(0x4246).u16(pad).raw(new Array(pad).fill(0x5a)) : new Bytes();
    out.u32(0x04034b50).u16(20).u16(0).u16(entry.method ?? 0).u16(0).u16(0x21);
    out.u32(crc).u32(entry.data.length).u32(entry.data.length).u16(name.length).u16(extra.length);
    out.raw(name).raw(extra.parts).raw(entry.data);
    // central header: the local header offset goes to a zip64 extra field when zip64 is on
    const zipExtra = zip64 ? new Bytes().u16(1).u16(8).u64(offset) : new Bytes();
    central.u32(0x02014b50).u16(45).u16(zip64 ? 45 : 20).u16(0).u16(entry.method ?? 0).u16(0).u16(0x21);
    central.u32(crc).u32(entry.data.length).u32(entry.data.length).u16(name.length).u16(zipExtra.length).u16(0);
    central.u16(0).u16(0).u32(0).u32(zip64 ? 0xffffffff : offset).raw(name).raw(zipExtra.parts);
  }
  const directoryOffset = out.length;
  out.raw(central.parts);
  if (zip64) {
    const record = out.length;
    out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0);
    out.u64(entries.length).u64(entries.length).u64(central.length).u64(directoryOffset);
    out.u32(0x07064b50).u32(0).u64(record).u32(1);
  }
  const comment = text.encode(options.comment ?? '');
  out.u32(0x06054b50).u16(0).u16(0);
  out.u16(zip64 ? 0xffff : entries.length).u16(zip64 ? 0xffff : entries.length);
  out.u32(zip64 ? 0xffffffff : central.length).u32(zip64 ? 0xffffffff : directoryOffset);
  out.u16(comment.length).raw(comment);
  return new Uint8Array(out.parts);
}
