#!/usr/bin/env python3
"""Make the photos bench/decode_memory.sh scans, one folder per case.

    pip install pillow numpy
    python3 bench/make_decode_memory_files.py OUT_DIR

Hostile: a 16000x16000 RGBA PNG of about 1 MB, a 16000x16000 progressive
4:4:4 JPEG (each alone and two at once), a sparse 3.9 GB file that starts
like a JPEG, a link to /dev/zero named like a photo. Normal photos of sizes a
photographer has: a 20000x4000 RGB PNG panorama, 16-bit RGB TIFFs of 45 MP
and of 20000x4000 (as exported for editing, in strips of 64 rows). Files
that exist already are kept (the big ones take a minute to make).
"""
import os
import struct
import sys

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None


def gradient(w, h, channels, dtype=np.uint8, y0=0, y1=None):
    """Rows y0..y1 of a w x h gradient."""
    top = np.iinfo(dtype).max
    x = (np.arange(w, dtype=np.float32) / w)[None, :]
    y = (np.arange(y0, h if y1 is None else y1, dtype=np.float32) / h)[:, None]
    planes = [x + 0 * y, y + 0 * x, (x + y) / 2, 1 - x * y][:channels]
    return (np.stack(planes, axis=-1) * top).astype(dtype)


def tiff16(path, w, h):
    """An uncompressed 16-bit RGB TIFF (little-endian), strips of 64 rows."""
    rows = 64
    strips = (h + rows - 1) // rows
    data_off = 8
    data_len = w * h * 6
    bps_off = data_off + data_len
    offs_off = bps_off + 6
    counts_off = offs_off + 4 * strips
    ifd_off = counts_off + 4 * strips
    tags = [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, 3, bps_off),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, strips, offs_off),
        (277, 3, 1, 3),
        (278, 4, 1, rows),
        (279, 4, strips, counts_off),
        (284, 3, 1, 1),
    ]
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", ifd_off))
        for y0 in range(0, h, 1000):
            rows_now = gradient(w, h, 3, np.uint16, y0, min(h, y0 + 1000))
            f.write(rows_now.astype("<u2").tobytes())
        f.write(struct.pack("<3H", 16, 16, 16))
        f.write(b"".join(struct.pack("<I", data_off + i * rows * w * 6) for i in range(strips)))
        f.write(b"".join(
            struct.pack("<I", min(rows, h - i * rows) * w * 6) for i in range(strips)))
        f.write(struct.pack("<H", len(tags)))
        for tag, typ, count, value in tags:
            if typ == 3 and count == 1:
                f.write(struct.pack("<HHIHH", tag, typ, count, value, 0))
            else:
                f.write(struct.pack("<HHII", tag, typ, count, value))
        f.write(struct.pack("<I", 0))


def main():
    out = sys.argv[1]

    def case(name):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        return d

    def make(path, fn):
        if not os.path.exists(path) and not os.path.islink(path):
            fn(path)
            print(f"made {path} ({os.path.getsize(path) if not os.path.islink(path) else 0} bytes)",
                  file=sys.stderr)

    def rgba_png(color):
        return lambda p: Image.new("RGBA", (16000, 16000), color + (200,)).save(p)

    def progressive_jpeg(color):
        return lambda p: Image.new("RGB", (16000, 16000), color).save(
            p, quality=90, progressive=True, subsampling=0)

    png = os.path.join(case("png-rgba-16k"), "a.png")
    make(png, rgba_png((40, 90, 160)))
    jpg = os.path.join(case("jpeg-progressive-444-16k"), "a.jpg")
    make(jpg, progressive_jpeg((40, 90, 160)))
    # Two different files, so that both are decoded at once.
    for name, ext, maker in [("png-rgba-16k-x2", ".png", rgba_png),
                             ("jpeg-progressive-444-16k-x2", ".jpg", progressive_jpeg)]:
        d = case(name)
        make(os.path.join(d, "a" + ext), maker((40, 90, 160)))
        make(os.path.join(d, "b" + ext), maker((160, 90, 40)))

    def sparse(p):
        head = open(jpg, "rb").read(4096)
        with open(p, "wb") as f:
            f.write(head)
            f.truncate(3_900_000_000)

    make(os.path.join(case("sparse-3.9GB"), "big.jpg"), sparse)
    make(os.path.join(case("dev-zero-link"), "z.jpg"), lambda p: os.symlink("/dev/zero", p))
    make(os.path.join(case("png-panorama-20000x4000"), "pano.png"),
         lambda p: Image.fromarray(gradient(20000, 4000, 3)).save(p, compress_level=1))
    make(os.path.join(case("tiff16-45mp"), "edit.tif"), lambda p: tiff16(p, 8256, 5504))
    make(os.path.join(case("tiff16-20000x4000"), "pano.tif"), lambda p: tiff16(p, 20000, 4000))


if __name__ == "__main__":
    main()
