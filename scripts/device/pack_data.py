"""Pack FER2013 + FER+ from ../shared/data into one compressed file for a lent GPU machine.

The device tool sends only the repository (64 MiB at most), not ../shared. FER+ holds the original
FER2013 pixels; the training and validation images (FER2013Train and FER2013Valid = Training and
PublicTest, 32,137 images; the test split is evaluated here, not there) are stored as WebP at quality
95 (36 MB; lossless WebP, PNG or the Kaggle JPEGs would need 50-60 MB), with the vote files and the
FER2013-to-FER+ map, and `unpack_data.py` rebuilds both layouts there. So the images trained on
there differ from the originals by WebP's small coding error (and the FER2013 JPEGs are re-encoded
at quality 95 from those); the 10 Training/PublicTest images without a FER+ twin are left out.

    python scripts/device/pack_data.py ../shared/data .devdata/fer.npz
"""
from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FOLDERS = ("FER2013Train", "FER2013Valid")


def main(src: str, out: str) -> None:
    root = Path(src)
    names, blobs = [], []
    for folder in FOLDERS:
        for line in (root / "ferplus" / folder / "label.csv").read_text().splitlines():
            name = line.split(",", 1)[0]
            names.append(f"{folder}/{name}")
            buf = io.BytesIO()
            Image.open(root / "ferplus" / folder / name).convert("L").save(buf, "WEBP", quality=95)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(dest, names=np.array(names), offsets=offsets, data=np.concatenate(blobs))
    for folder in FOLDERS:
        shutil.copy(root / "ferplus" / folder / "label.csv", dest.parent / f"{folder}.label.csv")
    shutil.copy(root / "fer2013_ferplus_map.csv", dest.parent / "fer2013_ferplus_map.csv")
    print(f"{dest}: {len(names)} images, {dest.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
