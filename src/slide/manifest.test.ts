import { describe, expect, it } from 'vitest';
import { SlideError } from './errors.ts';
import { formatIssues, openDataset, parseManifest } from './manifest.ts';
import type { SlideSource } from './source.ts';

describe('manifest CSV', () => {
  it('parses labels (0/1, negative/positive), splits and optional paths', () => {
    const m = parseManifest('slide,label,split,path\nA,1,train,a.svs\nB,negative,val,\n\nC,Positive,Train,https://x/c.tiff\n');
    expect(m.errors).toEqual([]);
    expect(m.rows).toEqual([
      { slide: 'A', label: 1, split: 'train', path: 'a.svs', line: 2 },
      { slide: 'B', label: 0, split: 'val', path: undefined, line: 3 },
      { slide: 'C', label: 1, split: 'train', path: 'https://x/c.tiff', line: 5 },
    ]);
  });
  it('reports each bad row with line, field and reason, and keeps the good rows', () => {
    const m = parseManifest('Slide, Label ,split\nA,1,train\nB,maybe,train\n,0,val\nD,0,test\nA,0,val\nE,1\n');
    expect(m.rows.map((r) => r.slide)).toEqual(['A']);
    expect(formatIssues(m.errors)).toEqual([
      'line 3, label: must be 0, 1, negative or positive',
      'line 4, slide: is empty',
      'line 5, split: must be train or val',
      'line 6, slide: duplicate slide "A" (first on line 2)',
      'line 7, split: must be train or val',
    ]);
  });
  it('rejects a header without the required columns', () => {
    expect(parseManifest('name,class\nA,1\n').errors).toEqual([{ line: 1, field: 'slide,label,split', reason: expect.stringMatching(/missing columns/) }]);
  });
});

describe('opening a data set', () => {
  it('reports slides that fail to open by name and reason; the rest go on', async () => {
    const { rows } = parseManifest('slide,label,split,path\nA,1,train,a.svs\nB,0,train,b.svs\nC,0,val,c.svs\n');
    const report = await openDataset(rows, async (row) => {
      if (row.slide === 'B') throw new SlideError(row.path!, 'unsupported compression LERC (34887)', 'unsupported');
      return { name: row.path } as unknown as SlideSource;
    });
    expect(report.opened.map((o) => o.row.slide)).toEqual(['A', 'C']);
    expect(report.failed).toEqual([{ slide: 'B', reason: 'unsupported compression LERC (34887)' }]);
  });
});
