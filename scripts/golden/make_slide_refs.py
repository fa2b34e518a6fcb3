#!/usr/bin/python3
"""Makes the committed slide fixtures under fixtures/slides/ and their reference regions.

Slides: Aperio JPEG 2000 SVS files made with the project's own encoders (33005 RGB, 33003 YCbCr
without MCT, with MCT, with 4:2:0 chroma coded by libvips, and with 4:2:2 chroma coded by OpenJPEG's
opj_compress), an Aperio-like JPEG SVS with
thumbnail, label and macro (the fuzz test's JPEG seed), and TIFFs written by Debian's
libvips (WebP 50001 lossy and lossless, JPEG 2000 33004 lossy and lossless, pyramids) and
libtiff's tiffcp (separate colour planes, tiled LZW and stripped Deflate, both with predictor;
the stripped one big-endian). The lossless 33004 file is a BigTIFF.
All start from one 320 x 240 scene (base.png, from the project's texture).

References: regions read by the readers the project is compared with, saved as PNG, listed in
refs.json: OpenSlide (python3-openslide) for the Aperio files and the tiled planar TIFF (libvips
cannot read tiled separate planes), libvips (`vips crop`) for the rest. src/slide/reference.test.ts
reads our regions of the same places and compares.

Needs: libvips-tools, libtiff-tools, libopenjp2-tools, python3-openslide (apt). Run: /usr/bin/python3 scripts/golden/make_slide_refs.py
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'fixtures', 'slides')
# Region of level 0 (x, y, w, h): crosses tile borders and ends in the padded edge tiles (128 px tiles).
REGION = (160, 96, 160, 144)


def run(*cmd):
    subprocess.run(cmd, check=True, cwd=ROOT)


def version(cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]


def main():
    import openslide  # python3-openslide

    os.makedirs(OUT, exist_ok=True)
    run('npx', 'tsx', 'scripts/make-fixtures.ts', '--reference-slides', OUT)
    base = os.path.join(OUT, 'base.png')
    tile = ['--tile', '--tile-width', '128', '--tile-height', '128']
    made = {
        'webp-lossy.tiff': ['--compression', 'webp', '--Q', '85', '--pyramid'],
        'webp-lossless.tiff': ['--compression', 'webp', '--lossless'],
        'jp2k-33004.tiff': ['--compression', 'jp2k', '--Q', '50', '--pyramid'],
        'jp2k-33004-lossless.tiff': ['--compression', 'jp2k', '--lossless', '--bigtiff'],
    }
    for name, opts in made.items():
        run('vips', 'tiffsave', base, os.path.join(OUT, name), *tile, *opts)
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, 'plain.tif')
        run('vips', 'tiffsave', base, plain)
        run('tiffcp', '-p', 'separate', '-c', 'lzw:2', '-t', '-w', '128', '-l', '128', plain, os.path.join(OUT, 'planar-tiled.tiff'))
        run('tiffcp', '-B', '-p', 'separate', '-c', 'zip:2', '-s', '-r', '32', plain, os.path.join(OUT, 'planar-strips.tiff'))

    vips_version = version(['vips', '--version'])
    openslide_version = 'openslide ' + openslide.__library_version__
    slides = [
        # file, codec, lossless, reader
        ('aperio-33005-rgb.svs', 'JPEG 2000 33005 RGB (lossy)', False, 'openslide'),
        ('aperio-33003-ycbcr.svs', 'JPEG 2000 33003 YCbCr 4:4:4, no MCT (lossless)', True, 'openslide'),
        ('aperio-33003-ycbcr-mct.svs', 'JPEG 2000 33003 YCbCr 4:4:4 with MCT (lossy)', False, 'openslide'),
        ('aperio-33003-420.svs', 'JPEG 2000 33003 YCbCr 4:2:0 (lossy, libvips-coded)', False, 'openslide'),
        ('aperio-33003-422.svs', 'JPEG 2000 33003 YCbCr 4:2:2 (lossy, opj_compress-coded)', False, 'openslide'),
        ('webp-lossy.tiff', 'WebP 50001 (lossy, Q 85)', False, 'vips'),
        ('webp-lossless.tiff', 'WebP 50001 (lossless)', True, 'vips'),
        ('jp2k-33004.tiff', 'JPEG 2000 33004 (lossy, Q 50)', False, 'vips'),
        ('jp2k-33004-lossless.tiff', 'JPEG 2000 33004 (lossless, BigTIFF)', True, 'vips'),
        ('aperio-jpeg.svs', 'JPEG YCbCr (Aperio-like, shared tables)', False, 'openslide'),
        ('planar-tiled.tiff', 'PlanarConfiguration 2, tiled LZW + predictor', True, 'openslide'),
        ('planar-strips.tiff', 'PlanarConfiguration 2, strips Deflate + predictor, big-endian', True, 'vips'),
    ]
    refs = []
    for name, codec, lossless, reader in slides:
        path = os.path.join(OUT, name)
        regions = [(0, *REGION)]
        if reader == 'openslide':
            s = openslide.OpenSlide(path)
            if s.level_count > 1:
                w, h = s.level_dimensions[1]
                regions.append((1, 0, 0, w, h))
            for level, x, y, w, h in regions:
                ds = s.level_downsamples[level]
                img = s.read_region((int(x * ds), int(y * ds)), level, (w, h)).convert('RGB')
                png = f'{name}.L{level}.png'
                img.save(os.path.join(OUT, png))
                refs.append(dict(file=name, codec=codec, lossless=lossless, reader=openslide_version, level=level, x=x, y=y, w=w, h=h, ref=png))
            s.close()
        else:
            pages = int(subprocess.run(['vipsheader', '-f', 'n-pages', path], capture_output=True, text=True, check=True).stdout.strip() or 1)
            if pages > 1:
                w = int(subprocess.run(['vipsheader', '-f', 'width', f'{path}[page=1]'], capture_output=True, text=True, check=True).stdout)
                h = int(subprocess.run(['vipsheader', '-f', 'height', f'{path}[page=1]'], capture_output=True, text=True, check=True).stdout)
                regions.append((1, 0, 0, w, h))
            for level, x, y, w, h in regions:
                png = f'{name}.L{level}.png'
                run('vips', 'crop', f'{path}[page={level}]', os.path.join(OUT, png), str(x), str(y), str(w), str(h))
                refs.append(dict(file=name, codec=codec, lossless=lossless, reader=vips_version, level=level, x=x, y=y, w=w, h=h, ref=png))
    with open(os.path.join(OUT, 'refs.json'), 'w') as f:
        json.dump({'generator': 'scripts/golden/make_slide_refs.py', 'base': 'base.png', 'refs': refs}, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'{len(slides)} slides, {len(refs)} reference regions, {total / 1024:.0f} KiB in {OUT}')


if __name__ == '__main__':
    sys.exit(main())
