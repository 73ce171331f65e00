#!/usr/bin/env bash
# The light install, checked for real: a fresh virtualenv, `pip install .` (no extras), then the main
# job. Prints the virtualenv's size, whether PyTorch/Lightning/FastAPI are absent, the time of
# `ferkit predict`, and the largest probability difference against the torch backend of the
# development install (run from a virtualenv with ".[all]": its python is $REF_PYTHON, default python3).
#
#   scripts/check_light_install.sh [PHOTO]
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTO="${1:-../shared/data/samples/two_people.jpg}"
REF_PYTHON="${REF_PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check . 2>&1 | tail -3
echo "light virtualenv: $(du -sm "$WORK/venv" | cut -f1) MB"
for m in torch lightning fastapi torchvision timm; do
    if "$WORK/venv/bin/python" -c "import $m" 2>/dev/null; then echo "$m: INSTALLED"; else echo "$m: absent"; fi
done
start=$(date +%s.%N)
(cd "$WORK" && "$WORK/venv/bin/ferkit" predict "$OLDPWD/$PHOTO" --format json > "$WORK/light.json")
end=$(date +%s.%N)
echo "ferkit predict (light, first run): $(echo "$end - $start" | bc) s"
"$REF_PYTHON" -m ferkit predict "$PHOTO" --format json --backend torch > "$WORK/torch.json"
"$REF_PYTHON" - "$WORK/light.json" "$WORK/torch.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
faces = [(fa, fb) for ra, rb in zip(a, b) for fa, fb in zip(ra["faces"], rb["faces"])]
assert [len(r["faces"]) for r in a] == [len(r["faces"]) for r in b], "different face counts"
assert all(fa["box"] == fb["box"] for fa, fb in faces), "different boxes"
worst = max(abs(fa["probabilities"][c] - fb["probabilities"][c]) for fa, fb in faces for c in fa["probabilities"])
print(f"{len(faces)} faces, same boxes; largest probability difference light (ONNX Runtime) vs torch: {worst:.2e}")
PY
