// A small baseline JPEG encoder for test fixtures and the demo: unlike jpeg-js or libjpeg through
// sharp, it can store RGB samples without the YCbCr transform (as Aperio's RGB-JPEG SVS tiles
// do) and chooses component ids, JFIF/Adobe markers and 4:2:0 subsampling. Standard (Annex K)
// luminance tables for every component. Not fast; fixtures are small.

const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63,
];
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29,
  51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120,
  101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALS = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14,
  0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09,
  0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
  0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65,
  0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
  0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
  0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
  0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
  0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

export interface JpegOptions {
  /** 1..100, IJG scaling. */
  quality?: number;
  /** Store YCbCr (true, the JFIF norm) or raw RGB samples (false, Aperio RGB tiles). */
  ycbcr?: boolean;
  /** 4:2:0 chroma subsampling (YCbCr only). */
  subsample?: boolean;
  /** Component ids; Aperio-style RGB files use 0,1,2 (no 'R','G','B' hint to decoders). */
  componentIds?: [number, number, number];
  /** Write a JFIF APP0 marker. */
  jfif?: boolean;
}

/** Huffman code table: value -> [code, length]. */
function buildCodes(bits: number[], vals: number[]): [number, number][] {
  const table: [number, number][] = [];
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < bits[len - 1]; i++) table[vals[k++]] = [code++, len];
    code <<= 1;
  }
  return table;
}
const DC_CODES = buildCodes(DC_BITS, DC_VALS);
const AC_CODES = buildCodes(AC_BITS, AC_VALS);

// [8, 8] DCT-II basis: C[u][x] = c(u)/2 cos((2x+1)uπ/16)
const BASIS = Array.from({ length: 8 }, (_, u) =>
  Array.from({ length: 8 }, (_, x) => (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16)),
);

/** Encodes RGB [height, width, 3] as a baseline JPEG. */
export function encodeJpeg(rgb: Uint8Array, width: number, height: number, options: JpegOptions = {}): Uint8Array {
  const { quality = 90, ycbcr = true, componentIds = [1, 2, 3], jfif = false } = options;
  const sub = ycbcr && (options.subsample ?? false);
  const scale = quality < 50 ? 5000 / quality : 200 - quality * 2;
  const q = LUMA_Q.map((v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
  // Planes [3][height*width] in the stored colour space, centred on 0.
  const n = width * height;
  const planes = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3], g = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
    if (ycbcr) {
      planes[0][i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
      planes[1][i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
      planes[2][i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
    } else {
      planes[0][i] = r - 128;
      planes[1][i] = g - 128;
      planes[2][i] = b - 128;
    }
  }
  const out: number[] = [];
  const marker = (m: number, body: number[]) => out.push(0xff, m, (body.length + 2) >> 8, (body.length + 2) & 255, ...body);
  out.push(0xff, 0xd8);
  if (jfif) marker(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  marker(0xdb, [0, ...ZIGZAG.map((z) => q[z])]);
  const hv = sub ? 0x22 : 0x11;
  marker(0xc0, [8, height >> 8, height & 255, width >> 8, width & 255, 3,
    componentIds[0], hv, 0, componentIds[1], 0x11, 0, componentIds[2], 0x11, 0]);
  marker(0xc4, [0x00, ...DC_BITS, ...DC_VALS, 0x10, ...AC_BITS, ...AC_VALS]);
  marker(0xda, [3, componentIds[0], 0, componentIds[1], 0, componentIds[2], 0, 0, 63, 0]);

  let acc = 0, nbits = 0;
  const put = (code: number, len: number) => {
    acc = (acc << len) | code;
    nbits += len;
    while (nbits >= 8) {
      const byte = (acc >> (nbits - 8)) & 255;
      out.push(byte);
      if (byte === 0xff) out.push(0);
      nbits -= 8;
    }
    acc &= (1 << nbits) - 1;
  };
  const magnitude = (v: number): [number, number] => {
    const a = Math.abs(v);
    const size = a === 0 ? 0 : 32 - Math.clz32(a);
    return [size, v < 0 ? v + (1 << size) - 1 : v];
  };
  const pred = [0, 0, 0];
  const block = new Float32Array(64);
  const tmp = new Float32Array(64);
  const encodeBlock = (c: number, bx: number, by: number, step: number) => {
    const plane = planes[c];
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        // Average step x step source pixels (4:2:0 chroma), replicating the edge.
        let s = 0;
        for (let dy = 0; dy < step; dy++) {
          for (let dx = 0; dx < step; dx++) {
            const sx = Math.min(width - 1, (bx + x) * step + dx), sy = Math.min(height - 1, (by + y) * step + dy);
            s += plane[sy * width + sx];
          }
        }
        block[y * 8 + x] = s / (step * step);
      }
    }
    for (let u = 0; u < 8; u++) for (let x = 0; x < 8; x++) {
      let s = 0;
      for (let y = 0; y < 8; y++) s += BASIS[u][y] * block[y * 8 + x];
      tmp[u * 8 + x] = s;
    }
    const coef = new Int32Array(64);
    for (let u = 0; u < 8; u++) for (let v = 0; v < 8; v++) {
      let s = 0;
      for (let x = 0; x < 8; x++) s += BASIS[v][x] * tmp[u * 8 + x];
      coef[u * 8 + v] = Math.round(s / q[u * 8 + v]);
    }
    const [dcSize, dcBits] = magnitude(coef[0] - pred[c]);
    pred[c] = coef[0];
    put(...DC_CODES[dcSize]);
    if (dcSize) put(dcBits, dcSize);
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = coef[ZIGZAG[k]];
      if (v === 0) { run++; continue; }
      while (run > 15) { put(...AC_CODES[0xf0]); run -= 16; }
      const [size, bits] = magnitude(v);
      put(...AC_CODES[(run << 4) | size]);
      put(bits, size);
      run = 0;
    }
    if (run > 0) put(...AC_CODES[0]);
  };
  const mcu = sub ? 16 : 8;
  for (let my = 0; my < Math.ceil(height / mcu); my++) {
    for (let mx = 0; mx < Math.ceil(width / mcu); mx++) {
      if (sub) {
        for (let k = 0; k < 4; k++) encodeBlock(0, mx * 16 + (k & 1) * 8, my * 16 + (k >> 1) * 8, 1);
        encodeBlock(1, mx * 8, my * 8, 2);
        encodeBlock(2, mx * 8, my * 8, 2);
      } else {
        for (let c = 0; c < 3; c++) encodeBlock(c, mx * 8, my * 8, 1);
      }
    }
  }
  if (nbits > 0) put((1 << (8 - nbits)) - 1, 8 - nbits);
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

/**
 * Splits a JPEG into a TIFF JPEGTables stream (SOI, DQT, DHT, EOI) and an abbreviated image
 * stream (SOI, SOF, DRI, SOS and scan data, EOI); APPn and COM segments are dropped.
 */
export function splitJpegTables(jpeg: Uint8Array): { tables: Uint8Array; tile: Uint8Array } {
  const tables: number[] = [0xff, 0xd8];
  const tile: number[] = [0xff, 0xd8];
  let i = 2;
  while (i < jpeg.length) {
    const m = jpeg[i + 1];
    const len = (jpeg[i + 2] << 8) | jpeg[i + 3];
    const seg = Array.from(jpeg.subarray(i, i + 2 + len));
    if (m === 0xda) {
      tile.push(...Array.from(jpeg.subarray(i)));
      break;
    }
    if (m === 0xdb || m === 0xc4) tables.push(...seg);
    else if ((m >= 0xc0 && m <= 0xcf) || m === 0xdd) tile.push(...seg);
    i += 2 + len;
  }
  tables.push(0xff, 0xd9);
  return { tables: Uint8Array.from(tables), tile: Uint8Array.from(tile) };
}
