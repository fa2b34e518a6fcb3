import { describe, expect, it } from 'vitest';
import { aperioMpp, classifyIfds, compressionName, omeMpp, resolutionTagMpp, slideMpp, type IfdShape } from './metadata.ts';

const ifd = (o: Partial<IfdShape> & { width: number; height: number }): IfdShape => ({
  chainIndex: 0, parentIndex: -1, tiled: true, newSubfileType: 0, description: null, resolution: null, resolutionUnit: 2, ...o,
});

describe('µm per pixel', () => {
  it('reads Aperio MPP and ignores the trailing NUL', () => {
    expect(aperioMpp('Aperio Image Library v12.0.15 \r\n46000x32914 (256x256) JPEG/RGB Q=70|AppMag = 20|MPP = 0.4990\0')).toBe(0.499);
    expect(aperioMpp('Aperio Image Library v12\r\nlabel 387x463')).toBeNull();
    expect(aperioMpp('ImageJ=1.52\nMPP = 0.25')).toBeNull();
  });
  it('reads OME-XML PhysicalSizeX/Y with units', () => {
    const xml = (x: string, unit?: string) => `<OME><Image><Pixels SizeX="1" PhysicalSizeX="${x}" PhysicalSizeY="${x}"${unit ? ` PhysicalSizeXUnit="${unit}" PhysicalSizeYUnit="${unit}"` : ''}/></Image></OME>`;
    expect(omeMpp(xml('0.25'))).toBe(0.25);
    expect(omeMpp(xml('250', 'nm'))).toBeCloseTo(0.25, 12);
    expect(omeMpp(xml('0.00025', 'mm'))).toBeCloseTo(0.25, 12);
    expect(omeMpp('<Image><Pixels/></Image>')).toBeNull();
  });
  it('reads resolution tags, and says unknown for unit none or non-microscope values', () => {
    expect(resolutionTagMpp([20000, 20000], 3)).toBeCloseTo(0.5, 12); // 20000 px/cm
    expect(resolutionTagMpp([101600, 101600], 2)).toBeCloseTo(0.25, 12); // px/inch
    expect(resolutionTagMpp([20000, 20000], 1)).toBeNull();
    expect(resolutionTagMpp([72, 72], 2)).toBeNull(); // 352 µm/px: a screen default
    expect(resolutionTagMpp(null, 2)).toBeNull();
  });
  it('prefers Aperio, then OME, then tags', () => {
    expect(slideMpp(ifd({ width: 10, height: 10, description: 'Aperio x|MPP = 0.25', resolution: [20000, 20000], resolutionUnit: 3 }))).toEqual({ mpp: 0.25, source: 'aperio' });
    expect(slideMpp(ifd({ width: 10, height: 10, resolution: [20000, 20000], resolutionUnit: 3 }))).toEqual({ mpp: 0.5, source: 'tiff-resolution' });
    expect(slideMpp(ifd({ width: 10, height: 10 }))).toBeNull();
  });
  it('names compressions', () => {
    expect(compressionName(33003)).toBe('JPEG 2000 (33003)');
    expect(compressionName(7)).toBe('JPEG (7)');
  });
});

describe('level and associated image classification', () => {
  it('Aperio SVS: thumbnail, levels, label, macro', () => {
    const ifds = [
      ifd({ chainIndex: 0, width: 46000, height: 32914 }),
      ifd({ chainIndex: 1, width: 1024, height: 732, tiled: false }),
      ifd({ chainIndex: 2, width: 11500, height: 8228 }),
      ifd({ chainIndex: 3, width: 2875, height: 2057 }),
      ifd({ chainIndex: 4, width: 387, height: 463, tiled: false, newSubfileType: 1, description: 'Aperio Image Library v11\r\nlabel 387x463' }),
      ifd({ chainIndex: 5, width: 1280, height: 431, tiled: false, newSubfileType: 9, description: 'Aperio Image Library v11\r\nmacro 1280x431' }),
    ];
    const c = classifyIfds(ifds);
    expect(c.levels.map((l) => l.chainIndex)).toEqual([0, 2, 3]);
    expect(c.associated.map((a) => [a.kind, a.ifd.chainIndex])).toEqual([['thumbnail', 1], ['label', 4], ['macro', 5]]);
  });
  it('OME-TIFF: SubIFDs are levels; other planes of the same size are not', () => {
    const ifds = [
      ifd({ chainIndex: 0, width: 8000, height: 6000, description: '<OME>' }),
      ifd({ chainIndex: -1, parentIndex: 0, width: 4000, height: 3000 }),
      ifd({ chainIndex: -1, parentIndex: 0, width: 2000, height: 1500 }),
      ifd({ chainIndex: 1, width: 8000, height: 6000 }),
      ifd({ chainIndex: 2, width: 500, height: 375, tiled: false }),
    ];
    const c = classifyIfds(ifds);
    expect(c.levels.map((l) => l.width)).toEqual([8000, 4000, 2000]);
    expect(c.associated.map((a) => [a.kind, a.ifd.width])).toEqual([['other', 8000], ['thumbnail', 500]]);
  });
  it('stripped-only files: reduced strip images are levels; odd aspect ratios are other', () => {
    const c = classifyIfds([ifd({ chainIndex: 0, width: 1000, height: 801, tiled: false }), ifd({ chainIndex: 1, width: 500, height: 401, tiled: false }), ifd({ chainIndex: 2, width: 300, height: 100, tiled: false })]);
    expect(c.levels.map((l) => l.width)).toEqual([1000, 500]);
    expect(c.associated.map((a) => a.kind)).toEqual(['other']);
  });
});
