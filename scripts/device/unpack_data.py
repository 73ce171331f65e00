"""Rebuild ../shared/data's fer2013/ (Kaggle folders) and ferplus/ layouts from `pack_data.py`'s file.

    python scripts/device/unpack_data.py .devdata/fer.npz /tmp/data
"""
from __future__ import annotations

import io
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def _write(chunk: list[tuple[str, bytes, str]]) -> None:
    for path, blob, fmt in chunk:
        with Image.open(io.BytesIO(blob)) as im:
            im.convert("L").save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))


def main(pack: str, out: str) -> None:
    src, dest = Path(pack), Path(out)
    z = np.load(src)
    names, offsets, data = [str(n) for n in z["names"]], z["offsets"], z["data"]
    index = {n: i for i, n in enumerate(names)}
    jobs = [(dest / "ferplus" / n, i, "PNG") for i, n in enumerate(names)]
    pairs = [line.split(",") for line in (src.parent / "fer2013_ferplus_map.csv").read_text().splitlines()[1:] if line]
    jobs += [(dest / "fer2013" / a, index[b], "JPEG") for a, b in pairs if b in index]
    for d in {p.parent for p, _, _ in jobs}:
        d.mkdir(parents=True, exist_ok=True)

    chunks = [[(str(p), bytes(data[offsets[i]:offsets[i + 1]]), fmt) for p, i, fmt in jobs[k:k + 2000]]
              for k in range(0, len(jobs), 2000)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write, chunks))
    for folder in ("FER2013Train", "FER2013Valid"):
        shutil.copy(src.parent / f"{folder}.label.csv", dest / "ferplus" / folder / "label.csv")
    shutil.copy(src.parent / "fer2013_ferplus_map.csv", dest / "fer2013_ferplus_map.csv")
    print(f"{dest}: {len(jobs)} images written")


if __name__ == "__main__":
    main(*sys.argv[1:3])
