import { describe, expect, it } from 'vitest';
import { annotateSlides, AnnotationError, coverage, lesionTilesOf, parseAnnotations, parseBoxCsv, parseGeoJson } from './annotations.ts';

// A QuPath "Export objects as GeoJSON" file: a FeatureCollection of annotations with classifications.
const QUPATH = JSON.stringify({
  type: 'FeatureCollection',
  features: [
    {
      type: 'Feature', id: 'a1',
      geometry: { type: 'Polygon', coordinates: [[[100, 100], [300, 100], [300, 300], [100, 300], [100, 100]], [[150, 150], [250, 150], [250, 250], [150, 250], [150, 150]]] },
      properties: { objectType: 'annotation', classification: { name: 'Tumor', color: [200, 0, 0] } },
    },
    {
      type: 'Feature', id: 'a2',
      geometry: { type: 'MultiPolygon', coordinates: [[[[400, 0], [500, 0], [500, 100], [400, 100], [400, 0]]], [[[600, 600], [700, 600], [650, 700], [600, 600]]]] },
      properties: { objectType: 'annotation', classification: { name: 'Stroma' } },
    },
    { type: 'Feature', geometry: { type: 'Point', coordinates: [5, 5] }, properties: { objectType: 'annotation' } },
  ],
});

describe('annotation files', () => {
  it('reads QuPath GeoJSON: polygons with holes, multipolygons, a class filter; points are skipped', () => {
    const all = parseGeoJson(QUPATH, 'slide.geojson');
    expect(all.shapes).toHaveLength(3);
    expect(all.shapes[0]).toMatchObject({ kind: 'polygon' });
    expect((all.shapes[0] as { rings: unknown[] }).rings).toHaveLength(2);
    expect(all.skipped).toEqual(['feature 2: Point geometry']);
    const tumour = parseGeoJson(QUPATH, 'slide.geojson', ['tumor']);
    expect(tumour.shapes).toHaveLength(1);
    expect(tumour.skipped).toHaveLength(2);
    // A bare array of features and a single feature work too.
    expect(parseGeoJson(JSON.stringify(JSON.parse(QUPATH).features), 'x.json').shapes).toHaveLength(3);
    expect(parseGeoJson(JSON.stringify(JSON.parse(QUPATH).features[0]), 'x.json').shapes).toHaveLength(1);
  });

  it('reads a CSV of boxes (x,y,w,h or x0,y0,x1,y1), keeps one slide\'s rows, and names bad lines', () => {
    const a = parseBoxCsv('slide,x,y,w,h\ns1,0,0,10,20\ns2,5,5,1,1\ns1,100,100,50,50\n', 'boxes.csv', 's1');
    expect(a.shapes).toEqual([{ kind: 'box', x: 0, y: 0, w: 10, h: 20 }, { kind: 'box', x: 100, y: 100, w: 50, h: 50 }]);
    expect(a.skipped).toEqual(['line 3: slide s2']);
    expect(parseBoxCsv('x0,y0,x1,y1\n10,10,30,50\n', 'b.csv').shapes).toEqual([{ kind: 'box', x: 10, y: 10, w: 20, h: 40 }]);
    expect(() => parseBoxCsv('x,y,w,h\n1,2,three,4\n', 'b.csv')).toThrow(/b\.csv: line 2: w is not a number/);
    expect(() => parseBoxCsv('a,b\n1,2\n', 'b.csv')).toThrow(/header must name/);
    expect(() => parseBoxCsv('x,y,w,h\n1,2,0,4\n', 'b.csv')).toThrow(/no area/);
  });

  it('refuses what it cannot read, naming the file and the reason', () => {
    expect(() => parseAnnotations('{', 's.geojson')).toThrow(AnnotationError);
    expect(() => parseAnnotations('{', 's.geojson')).toThrow(/^s\.geojson: not JSON/);
    expect(() => parseAnnotations('{"type":"Point"}', 's.json')).toThrow(/not GeoJSON/);
    expect(() => parseAnnotations(JSON.stringify({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 1]]] } }), 's.json')).toThrow(/feature 0 ring 0: a ring needs at least 3 points/);
    expect(() => parseAnnotations('x', 's.xml')).toThrow(/unknown annotation format/);
  });

  it('marks the tiles a shape covers: holes excluded, partial cover against a threshold', () => {
    const { shapes } = parseGeoJson(QUPATH, 's.geojson', ['Tumor']); // 200-px square with a 100-px hole
    // Tiles of 50 px: one in the ring, one in the hole, one outside, one half in the ring.
    const rects = [100, 100, 50, 50, /**/ 175, 175, 50, 50, /**/ 400, 400, 50, 50, /**/ 75, 100, 50, 50];
    expect(coverage(rects.slice(0, 4), shapes[0])).toBe(1);
    expect(coverage(rects.slice(4, 8), shapes[0])).toBe(0);
    expect(coverage(rects.slice(12, 16), shapes[0])).toBeCloseTo(0.5, 6);
    expect(lesionTilesOf(rects, shapes)).toEqual([0, 3]);
    expect(lesionTilesOf(rects, shapes, 0.6)).toEqual([0]);
    const box = parseBoxCsv('x,y,w,h\n390,390,20,20\n', 'b.csv').shapes[0];
    expect(coverage([400, 400, 50, 50], box)).toBeCloseTo((10 * 10) / 2500, 12);
    expect(lesionTilesOf(rects, [box], 0.01)).toEqual([2]);
    expect(() => lesionTilesOf([1, 2, 3], shapes)).toThrow(/4 per tile/);
  });

  it('attaches files to slides by name, or by the slide column of one CSV; unreadable or unmatched files are reported, the rest go on', () => {
    const slides = [{ id: 's1', rects: [0, 0, 100, 100, 100, 0, 100, 100] }, { id: 's2', rects: [0, 0, 100, 100] }, { id: 's3', rects: [0, 0, 100, 100] }];
    const r = annotateSlides(slides, [
      { name: 'dir/s1.geojson', text: JSON.stringify({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[120, 10], [190, 10], [190, 90], [120, 90]]] }, properties: {} }) },
      { name: 'all.csv', text: 'slide,x,y,w,h\ns2,0,0,50,50\ns9,0,0,5,5\n' },
      { name: 's3.csv', text: 'x,y,w,h\n1,2,oops,4\n' },
      { name: 'notes.json', text: '{}' },
    ]);
    expect(r.lesions.get('s1')).toEqual([1]);
    expect(r.lesions.get('s2')).toEqual([0]);
    expect(r.lesions.get('s3')).toEqual([]); // its own file failed; the cohort CSV lists no box for it: no lesion
    expect(r.issues).toHaveLength(2);
    expect(r.issues[0]).toMatch(/^s3\.csv: line 2: w is not a number/);
    expect(r.issues[1]).toMatch(/^notes\.json: names no slide/);
  });
});
