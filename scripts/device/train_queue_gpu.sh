#!/usr/bin/env bash
# The whole training queue in one call on a lent GPU (the device tool's `run`, 10 minutes at most):
#
#   run: bash scripts/device/train_queue_gpu.sh            (timeout_s 600; the data travels packed)
#
# 1. rebuilds FER2013 + FER+ from .devdata/fer.npz (scripts/device/pack_data.py, made here beforehand) unless
#    DATA names a folder that already holds them (the CPU test gives ../shared/data);
# 2. trains QUEUE (default: the default's recipe and the second family's first stage) one after another with
#    scripts/train_queue.py in bf16 on the GPU, stopping at DEADLINE seconds (default 480: the call's 600 less
#    unpacking and copying), so every run keeps its best model and last epoch even when time runs out;
# 3. leaves under $OUT/queue each run's model.safetensors + model.json, metrics.csv, config.yaml and log
#    (not the checkpoints, too large to come back): ship them with scripts/ship_model.py.
# EXTRA: more overrides for every run (the CPU test: a tiny subset and one epoch).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT to the folder whose files come back}"
QUEUE="${QUEUE:-default_ferplus7 votes_resnet18n}"
DEADLINE="${DEADLINE:-480}"
DATA="${DATA:-}"
PY="${PYTHON:-python}"
if [ -z "$DATA" ]; then
    DATA=/tmp/ferkit_data
    "$PY" scripts/device/unpack_data.py .devdata/fer.npz "$DATA"
fi
PRECISION="bf16-mixed"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || PRECISION="32"
sets=(--set "data.path=$DATA/ferplus" --set "trainer.precision=$PRECISION" --set "trainer.threads=null")
for extra in ${EXTRA:-}; do sets+=(--set "$extra"); done
status=0
"$PY" scripts/train_queue.py --root "$OUT/queue" --deadline "$DEADLINE" "${sets[@]}" $QUEUE || status=$?
rm -rf "$OUT"/queue/*/checkpoints "$OUT"/queue/*/logs
ls -l "$OUT"/queue/*/model.safetensors 2>/dev/null || true
exit $status
