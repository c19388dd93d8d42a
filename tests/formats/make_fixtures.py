#!/usr/bin/env python3
"""Make the format fixtures in tests/formats/ from one shipped photo.

Source: samples/album/day1/DSC_0042.JPG (scikit-image's coffee.png, CC0-1.0,
see samples/LICENSES.md). Every fixture shows that photo reduced to 192x128
(as displayed), so each one must be grouped with twin.jpg by `neardup scan`.

Needs: python3 with Pillow (pip install pillow), heif-enc (Debian:
libheif-examples) and avifenc (Debian: libavif-bin).

    python3 tests/formats/make_fixtures.py

HEIC and AVIF are written by the real encoders. The RAW files are SYNTHETIC:
no registry package ships small real RAW files, so this script writes the
containers itself, laid out the way the cameras lay them out (TIFF IFDs,
SubIFDs, maker notes; Fujifilm's RAF header; Canon's CR3 ISO-BMFF boxes), with
a tiny fake sensor strip and a JPEG preview of the photo. The preview is
stored rotated (portrait) and the RAW's own metadata says "rotate 90 CW", so
a reader that ignores the orientation shows it sideways. Each RAW also
carries a decoy: a small thumbnail of another picture (and CR2 a fake
lossless-JPEG sensor stream larger than the preview), which a reader must not
pick as "the largest preview".
"""

import io
import os
import struct
import subprocess
import tempfile

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(REPO, "samples", "album", "day1", "DSC_0042.JPG")
W, H = 192, 128


def out(name):
    return os.path.join(HERE, name)


def jpeg_bytes(img, quality=85, exif_orientation=None):
    buf = io.BytesIO()
    kw = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    img.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------- TIFF writer
TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 13: 4}  # BYTE ASCII SHORT LONG UNDEFINED IFD


class TiffWriter:
    """A little TIFF-structure writer: blobs and IFDs appended to one buffer,
    children written before their parents so every offset is known."""

    def __init__(self, little=True, header=None, base=0):
        self.e = "<" if little else ">"
        self.buf = bytearray(header or b"")
        self.base = base  # offsets are relative to this position

    def align(self):
        if len(self.buf) % 2:
            self.buf += b"\0"

    def blob(self, data):
        self.align()
        off = len(self.buf) - self.base
        self.buf += data
        return off

    def value(self, typ, values):
        if typ in (2, 7, 1) and isinstance(values, (bytes, bytearray)):
            return bytes(values), len(values)
        if typ == 2:
            raw = values.encode() + b"\0"
            return raw, len(raw)
        fmt = {1: "B", 3: "H", 4: "I", 13: "I"}[typ]
        vals = values if isinstance(values, (list, tuple)) else [values]
        return struct.pack(self.e + fmt * len(vals), *vals), len(vals)

    def ifd(self, entries, next_ifd=0):
        """entries: list of (tag, type, values). Returns the IFD's offset."""
        packed = []
        for tag, typ, values in sorted(entries, key=lambda t: t[0]):
            raw, count = self.value(typ, values)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\0")
            else:
                field = struct.pack(self.e + "I", self.blob(raw))
            packed.append(struct.pack(self.e + "HHI", tag, typ, count) + field)
        self.align()
        off = len(self.buf) - self.base
        self.buf += struct.pack(self.e + "H", len(packed))
        for p in packed:
            self.buf += p
        self.buf += struct.pack(self.e + "I", next_ifd)
        return off

    def patch_u32(self, pos, value):
        self.buf[pos : pos + 4] = struct.pack(self.e + "I", value)


def tiff_header(little, magic=42):
    return (b"II" if little else b"MM") + struct.pack(
        ("<" if little else ">") + "HI", magic, 0
    )


def rgb_strip(img):
    return img.convert("RGB").tobytes()


def cfa_strip():
    return bytes(16 * 16 * 2)  # a fake 16x16 16-bit sensor patch


def cfa_ifd(t, compression=1):
    return t.ifd(
        [
            (0x00FE, 4, 0),
            (0x0100, 4, 16),
            (0x0101, 4, 16),
            (0x0102, 3, 16),
            (0x0103, 3, compression),
            (0x0106, 3, 32803),  # CFA
            (0x0111, 4, t.blob(cfa_strip())),
            (0x0115, 3, 1),
            (0x0116, 4, 16),
            (0x0117, 4, 16 * 16 * 2),
        ]
    )


def rgb_ifd_entries(t, img, subfile=1):
    data = rgb_strip(img)
    return [
        (0x00FE, 4, subfile),
        (0x0100, 4, img.width),
        (0x0101, 4, img.height),
        (0x0102, 3, [8, 8, 8]),
        (0x0103, 3, 1),
        (0x0106, 3, 2),
        (0x0111, 4, t.blob(data)),
        (0x0115, 3, 3),
        (0x0116, 4, img.height),
        (0x0117, 4, len(data)),
    ]


def make_dng(preview, thumb):
    t = TiffWriter(True, tiff_header(True))
    raw = cfa_ifd(t)
    prev = t.ifd(
        [
            (0x00FE, 4, 1),
            (0x0100, 4, preview[1].width),
            (0x0101, 4, preview[1].height),
            (0x0102, 3, [8, 8, 8]),
            (0x0103, 3, 7),  # JPEG
            (0x0106, 3, 6),
            (0x0111, 4, t.blob(preview[0])),
            (0x0115, 3, 3),
            (0x0116, 4, preview[1].height),
            (0x0117, 4, len(preview[0])),
        ]
    )
    ifd0 = t.ifd(
        rgb_ifd_entries(t, thumb)
        + [
            (0x010F, 2, "Synthetic"),
            (0x0110, 2, "neardup test DNG"),
            (0x0112, 3, 6),
            (0x014A, 4, [raw, prev]),
            (0xC612, 1, bytes([1, 4, 0, 0])),
            (0xC614, 2, "neardup test DNG"),
        ]
    )
    t.patch_u32(4, ifd0)
    return bytes(t.buf)


def nikon_makernote(thumb_jpeg):
    # "Nikon\0" + version + a TIFF header of its own; offsets relative to it.
    t = TiffWriter(False, b"Nikon\0\x02\x10\0\0" + tiff_header(False), base=10)
    prev = t.ifd([(0x0103, 3, 6), (0x0201, 4, t.blob(thumb_jpeg)), (0x0202, 4, len(thumb_jpeg))])
    ifd = t.ifd([(0x0001, 7, b"0210"), (0x0011, 13, prev)])
    t.patch_u32(14, ifd)
    return bytes(t.buf)


def make_nef(preview, thumb, thumb_jpeg):
    t = TiffWriter(False, tiff_header(False))
    prev = t.ifd(
        [
            (0x00FE, 4, 1),
            (0x0103, 3, 6),
            (0x0201, 4, t.blob(preview[0])),
            (0x0202, 4, len(preview[0])),
        ]
    )
    raw = cfa_ifd(t, compression=34713)
    exif = t.ifd([(0x927C, 7, nikon_makernote(thumb_jpeg))])
    ifd0 = t.ifd(
        rgb_ifd_entries(t, thumb)
        + [
            (0x010F, 2, "NIKON CORPORATION"),
            (0x0110, 2, "NIKON D-SYNTH"),
            (0x0112, 3, 6),
            (0x014A, 4, [prev, raw]),
            (0x8769, 4, exif),
        ]
    )
    t.patch_u32(4, ifd0)
    return bytes(t.buf)


def make_arw(preview, thumb_jpeg):
    t = TiffWriter(True, tiff_header(True))
    raw = cfa_ifd(t, compression=32767)
    ifd1 = t.ifd(
        [(0x0103, 3, 6), (0x0201, 4, t.blob(thumb_jpeg)), (0x0202, 4, len(thumb_jpeg))]
    )
    ifd0 = t.ifd(
        [
            (0x00FE, 4, 1),
            (0x0103, 3, 6),
            (0x010F, 2, "SONY"),
            (0x0110, 2, "ILCE-SYNTH"),
            (0x0112, 3, 6),
            (0x014A, 4, raw),
            (0x0201, 4, t.blob(preview[0])),
            (0x0202, 4, len(preview[0])),
        ],
        next_ifd=ifd1,
    )
    t.patch_u32(4, ifd0)
    return bytes(t.buf)


def fake_lossless_jpeg(size):
    # SOI, SOF3 (lossless) 16x16, then filler: sensor data, never a preview.
    sof3 = b"\xff\xc3" + struct.pack(">HBHHB", 11, 14, 16, 16, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof3 + bytes(size) + b"\xff\xd9"


def make_cr2(preview, thumb, thumb_jpeg):
    header = b"II*\0" + struct.pack("<I", 16) + b"CR\x02\x00" + struct.pack("<I", 0)
    t = TiffWriter(True, header)
    lossless = fake_lossless_jpeg(3 * len(preview[0]))
    ifd3 = t.ifd(
        [
            (0x0103, 3, 6),
            (0x0111, 4, t.blob(lossless)),
            (0x0117, 4, len(lossless)),
            (0xC5D8, 4, 1),
        ]
    )
    ifd2 = t.ifd(rgb_ifd_entries(t, thumb), next_ifd=ifd3)
    ifd1 = t.ifd(
        [(0x0103, 3, 6), (0x0201, 4, t.blob(thumb_jpeg)), (0x0202, 4, len(thumb_jpeg))],
        next_ifd=ifd2,
    )
    ifd0 = t.ifd(
        [
            (0x0100, 4, preview[1].width),
            (0x0101, 4, preview[1].height),
            (0x0102, 3, [8, 8, 8]),
            (0x0103, 3, 6),
            (0x010F, 2, "Canon"),
            (0x0110, 2, "Canon EOS SYNTH"),
            (0x0111, 4, t.blob(preview[0])),
            (0x0112, 3, 6),
            (0x0117, 4, len(preview[0])),
        ],
        next_ifd=ifd1,
    )
    t.patch_u32(4, ifd0)
    t.patch_u32(12, ifd3)
    return bytes(t.buf)


def olympus_makernote(preview_jpeg):
    """New-style Olympus maker note: "OLYMPUS\\0II\\3\\0", its main IFD at +12,
    offsets relative to the maker note's start. Tag 0x2020 points to the
    CameraSettings IFD, whose 0x0101/0x0102 locate the preview JPEG."""
    def ifd(entries):
        b = struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            b += struct.pack("<HHI", tag, typ, count) + value
        return b + struct.pack("<I", 0)

    main_at = 12
    cs_at = main_at + 2 + 2 * 12 + 4
    jpeg_at = cs_at + 2 + 3 * 12 + 4
    main = ifd([(0x0000, 7, 4, b"0100"), (0x2020, 13, 1, struct.pack("<I", cs_at))])
    cs = ifd(
        [
            (0x0100, 4, 1, struct.pack("<I", 1)),
            (0x0101, 4, 1, struct.pack("<I", jpeg_at)),
            (0x0102, 4, 1, struct.pack("<I", len(preview_jpeg))),
        ]
    )
    note = b"OLYMPUS\0II\x03\x00" + main + cs
    assert len(note) == jpeg_at
    return note + preview_jpeg


def make_orf(preview, thumb_jpeg):
    t = TiffWriter(True, b"IIRO" + struct.pack("<I", 0))
    exif = t.ifd([(0x927C, 7, olympus_makernote(preview[0]))])
    ifd1 = t.ifd(
        [(0x0103, 3, 6), (0x0201, 4, t.blob(thumb_jpeg)), (0x0202, 4, len(thumb_jpeg))]
    )
    ifd0 = t.ifd(
        [
            (0x00FE, 4, 0),
            (0x0100, 4, 16),
            (0x0101, 4, 16),
            (0x0102, 3, 16),
            (0x0103, 3, 1),
            (0x010F, 2, "OLYMPUS CORPORATION"),
            (0x0110, 2, "E-SYNTH"),
            (0x0111, 4, t.blob(cfa_strip())),
            (0x0112, 3, 6),
            (0x0117, 4, 16 * 16 * 2),
            (0x8769, 4, exif),
        ],
        next_ifd=ifd1,
    )
    t.patch_u32(4, ifd0)
    return bytes(t.buf)


def make_rw2(preview):
    t = TiffWriter(True, b"IIU\0" + struct.pack("<I", 0))
    ifd0 = t.ifd(
        [
            (0x0001, 7, b"0470"),
            (0x0002, 3, 16),
            (0x0003, 3, 16),
            (0x000F, 3, 1),
            (0x010F, 2, "Panasonic"),
            (0x0110, 2, "DC-SYNTH"),
            (0x0112, 3, 6),
            (0x0118, 4, t.blob(cfa_strip())),
            (0x002E, 7, preview[0]),
        ]
    )
    t.patch_u32(4, ifd0)
    return bytes(t.buf)


def make_raf(preview_with_exif):
    head = bytearray()
    head += b"FUJIFILMCCD-RAW "
    head += b"0201"
    head += b"FF129502"
    head += b"X-SYNTH".ljust(32, b"\0")
    head += b"0100"
    head += bytes(20)
    assert len(head) == 84
    jpeg_at = 84 + 24 + 44  # after the offset table and some padding
    cfa = cfa_strip()
    cfa_at = jpeg_at + len(preview_with_exif)
    head += struct.pack(">IIIIII", jpeg_at, len(preview_with_exif), 0, 0, cfa_at, len(cfa))
    head += bytes(jpeg_at - len(head))
    return bytes(head) + preview_with_exif + cfa


def box(kind, payload):
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind, version, flags, payload):
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
PREVIEW_UUID = bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16")


def make_cr3(full_jpeg, preview_jpeg, thumb_jpeg):
    """Canon CR3 layout: ftyp 'crx ', moov { uuid(Canon) { CNCV, CMT1 (TIFF
    IFD0 with the orientation), THMB }, trak (the full-size JPEG, CRAW) },
    uuid(preview) { PRVW }, mdat { JPEG, sensor data }."""
    ftyp = box(b"ftyp", b"crx " + struct.pack(">I", 1) + b"crx isom")
    tw = TiffWriter(True, tiff_header(True))
    ifd0 = tw.ifd([(0x010F, 2, "Canon"), (0x0110, 2, "Canon EOS R-SYNTH"), (0x0112, 3, 6)])
    tw.patch_u32(4, ifd0)
    cmt1 = box(b"CMT1", bytes(tw.buf))
    thmb = box(b"THMB", struct.pack(">BBHHHIHH", 0, 0, 0, 160, 120, len(thumb_jpeg), 0, 0)[1:] + thumb_jpeg)
    canon = box(b"uuid", CANON_UUID + box(b"CNCV", b"CanonCR3_001/00.10.00/00.00.00") + cmt1 + thmb)
    prvw = box(
        b"PRVW",
        struct.pack(">IHHHHI", 0, 1, 1620, 1080, 1, len(preview_jpeg)) + preview_jpeg,
    )
    preview_box = box(b"uuid", PREVIEW_UUID + struct.pack(">Q", 1) + prvw)

    def trak(offset_placeholder):
        craw = box(b"CRAW", bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", 6000, 4000) + bytes(50) + box(b"JPEG", bytes(4)))
        stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1) + craw)
        stsz = full_box(b"stsz", 0, 0, struct.pack(">II", len(full_jpeg), 1))
        co64 = full_box(b"co64", 0, 0, struct.pack(">IQ", 1, offset_placeholder))
        stbl = box(b"stbl", stsd + stsz + co64)
        return box(b"trak", box(b"mdia", box(b"minf", stbl)))

    moov_len = len(box(b"moov", canon + trak(0)))
    mdat_at = len(ftyp) + moov_len + len(preview_box)
    moov = box(b"moov", canon + trak(mdat_at + 8))
    mdat = box(b"mdat", full_jpeg + cfa_strip())
    return ftyp + moov + preview_box + mdat


def boxes(data, start, end):
    """(type, start, header_len, end) of the ISO-BMFF boxes in data[start:end]."""
    out = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", data[start + 8 : start + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - start
        out.append((kind, start, hdr, start + size))
        start += size
    return out


def add_irot(heif, angle):
    """Give the primary item of a HEIF file written by heif-enc an 'irot'
    property (anticlockwise, in quarter turns), the way phones store a photo
    taken sideways. heif-enc 1.15 has no option for it: the box is added to
    ipco, associated in ipma (essential), and every size and the iloc
    offsets (the data follows the meta box) are moved by the bytes added."""
    data = bytearray(heif)
    top = {k: (s, h, e) for k, s, h, e in boxes(data, 0, len(data))}
    ms, mh, me = top[b"meta"]
    meta_children = {k: (s, h, e) for k, s, h, e in boxes(data, ms + mh + 4, me)}
    ps, ph, pe = meta_children[b"iprp"]
    iprp = {k: (s, h, e) for k, s, h, e in boxes(data, ps + ph, pe)}
    cs, ch, ce = iprp[b"ipco"]
    n_props = len(boxes(data, cs + ch, ce))
    irot = box(b"irot", bytes([angle]))
    # ipma: version/flags, entry_count, per entry item_ID (16 bit in v0),
    # association count (8 bit), associations (8 bit unless flags & 1).
    as_, ah, ae = iprp[b"ipma"]
    p = as_ + ah
    version, flags = data[p], int.from_bytes(data[p + 1 : p + 4], "big")
    assert version == 0 and not flags & 1, "heif-enc's ipma layout changed"
    count = struct.unpack(">I", data[p + 4 : p + 8])[0]
    q = p + 8
    ts, th, _ = meta_children[b"pitm"]
    primary = struct.unpack(">H", data[ts + th + 4 : ts + th + 6])[0]
    new_ipma = bytearray(data[as_ : p + 8])
    for _ in range(count):
        item, n = struct.unpack(">HB", data[q : q + 3])
        assoc = bytearray(data[q + 3 : q + 3 + n])
        if item == primary:
            assoc.append(0x80 | (n_props + 1))
            n += 1
        new_ipma += struct.pack(">HB", item, n) + assoc
        q += 3 + data[q + 2]
    struct.pack_into(">I", new_ipma, 0, len(new_ipma))
    delta = len(irot) + len(new_ipma) - (ae - as_)
    # Rebuild iprp = ipco (+irot) + new ipma, in the order they had.
    new_ipco = bytearray(data[cs:ce]) + irot
    struct.pack_into(">I", new_ipco, 0, len(new_ipco))
    parts = []
    for k, s, h, e in boxes(data, ps + ph, pe):
        parts.append(bytes(new_ipco) if k == b"ipco" else bytes(new_ipma) if k == b"ipma" else bytes(data[s:e]))
    new_iprp = bytearray(data[ps : ps + ph]) + b"".join(parts)
    struct.pack_into(">I", new_iprp, 0, len(new_iprp))
    # iloc: shift every extent offset by delta.
    ls, lh, le = meta_children[b"iloc"]
    loc = bytearray(data[ls:le])
    v = loc[lh]
    off_size, len_size = loc[lh + 4] >> 4, loc[lh + 4] & 15
    base_size, idx_size = loc[lh + 5] >> 4, loc[lh + 5] & 15
    r = lh + 6
    n_items = struct.unpack(">H", loc[r : r + 2])[0] if v < 2 else struct.unpack(">I", loc[r : r + 4])[0]
    r += 2 if v < 2 else 4
    for _ in range(n_items):
        r += 2 if v < 2 else 4
        method = 0
        if v in (1, 2):
            method = int.from_bytes(loc[r : r + 2], "big") & 15
            r += 2
        r += 2
        base = int.from_bytes(loc[r : r + base_size], "big") if base_size else 0
        if base_size and base and method == 0:
            loc[r : r + base_size] = (base + delta).to_bytes(base_size, "big")
        r += base_size
        extents = struct.unpack(">H", loc[r : r + 2])[0]
        r += 2
        for _ in range(extents):
            if v in (1, 2) and idx_size:
                r += idx_size
            if method == 0 and not (base_size and base):
                o = int.from_bytes(loc[r : r + off_size], "big")
                loc[r : r + off_size] = (o + delta).to_bytes(off_size, "big")
            r += off_size + len_size
    children = []
    for k, s, h, e in boxes(data, ms + mh + 4, me):
        children.append(bytes(new_iprp) if k == b"iprp" else bytes(loc) if k == b"iloc" else bytes(data[s:e]))
    new_meta = bytearray(data[ms : ms + mh + 4]) + b"".join(children)
    struct.pack_into(">I", new_meta, 0, len(new_meta))
    assert len(new_meta) - (me - ms) == delta
    return bytes(data[:ms]) + bytes(new_meta) + bytes(data[me:])


def main():
    src = Image.open(SRC).convert("RGB")
    base = src.resize((W, H), Image.LANCZOS)
    other = ImageOps.invert(base).transpose(Image.FLIP_TOP_BOTTOM)
    stored = base.rotate(90, expand=True)  # stored sideways: EXIF 6 displays it upright

    base.save(out("twin.jpg"), "JPEG", quality=90)
    base.save(out("lossy.webp"), "WEBP", quality=80)
    base.save(out("lossless.webp"), "WEBP", lossless=True)
    base.save(out("animated.webp"), "WEBP", save_all=True, append_images=[other],
              duration=500, loop=0, quality=75)
    base.save(out("animated.gif"), "GIF", save_all=True, append_images=[other],
              duration=500, loop=0)
    base.save(out("multipage.tif"), "TIFF", save_all=True,
              append_images=[other.resize((48, 32))], compression="tiff_deflate")

    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "base.png")
        base.save(png)
        subprocess.run(["heif-enc", "-q", "60", "-o", out("photo.heic"), png], check=True)
        subprocess.run(["avifenc", "--min", "20", "--max", "40", "-s", "6", png, out("photo.avif")], check=True,
                       stdout=subprocess.DEVNULL)
        # Stored sideways with an 'irot' that turns it upright.
        spng = os.path.join(tmp, "stored.png")
        stored.save(spng)
        subprocess.run(["avifenc", "--min", "20", "--max", "40", "-s", "6", "--irot", "3", spng,
                        out("rotated.avif")], check=True, stdout=subprocess.DEVNULL)
        # heif-enc keeps the EXIF orientation of a JPEG input (6: turn 90
        # degrees clockwise) but writes no 'irot': add one that says the same,
        # as phones do. Readers must apply 'irot' and not the EXIF tag too.
        sjpg = os.path.join(tmp, "stored.jpg")
        with open(sjpg, "wb") as f:
            f.write(jpeg_bytes(stored, 95, exif_orientation=6))
        sheic = os.path.join(tmp, "stored.heic")
        subprocess.run(["heif-enc", "-q", "60", "-o", sheic, sjpg], check=True)
        with open(sheic, "rb") as f:
            rotated = add_irot(f.read(), 3)
        with open(out("rotated.heic"), "wb") as f:
            f.write(rotated)

    preview = (jpeg_bytes(stored, 85), stored)
    thumb = other.resize((24, 16))
    thumb_jpeg = jpeg_bytes(other.resize((48, 32)), 80)
    raws = {
        "shot.dng": make_dng(preview, thumb),
        "DSC_0042.NEF": make_nef(preview, thumb, thumb_jpeg),
        "shot.arw": make_arw(preview, thumb_jpeg),
        "shot.cr2": make_cr2(preview, thumb, thumb_jpeg),
        "shot.orf": make_orf(preview, thumb_jpeg),
        "shot.rw2": make_rw2(preview),
        # RAF keeps the orientation in the preview's own EXIF.
        "shot.raf": make_raf(jpeg_bytes(stored, 85, exif_orientation=6)),
        # CR3: the full-size JPEG in the first track is the largest; the
        # PRVW preview is a smaller, upright-stored decoy of another picture
        # would be wrong, so it holds the same photo at half size.
        "shot.cr3": make_cr3(
            jpeg_bytes(stored, 85),
            jpeg_bytes(stored.resize((64, 96)), 80),
            thumb_jpeg,
        ),
    }
    for name, data in raws.items():
        with open(out(name), "wb") as f:
            f.write(data)
    # A RAW without any JPEG preview: skipped with a warning that says so.
    t = TiffWriter(True, tiff_header(True))
    raw = cfa_ifd(t)
    ifd0 = t.ifd(rgb_ifd_entries(t, thumb) + [(0x014A, 4, raw), (0xC612, 1, bytes([1, 4, 0, 0]))])
    t.patch_u32(4, ifd0)
    with open(out("nopreview.dng"), "wb") as f:
        f.write(bytes(t.buf))

    total = 0
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py") or name.endswith(".md"):
            continue
        size = os.path.getsize(out(name))
        total += size
        print(f"{name:20} {size:7d}")
    print(f"{'total':20} {total:7d}")


if __name__ == "__main__":
    main()
