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
# 3. then trains the papers' rows named in ROWS (words PAPER or PAPER:KEY; default "all": every row of every
#    paper; empty: none), each from its config as `ferkit papers config` writes it, into $OUT/papers, from a
#    working folder where the rows' data path (../shared/data/...) leads to DATA: so each run's config.yaml is
#    its recipe's own, and back here `mv <files>/papers/NAME runs/papers/NAME-gpu` makes it a run that
#    `ferkit papers table PAPER` finds and evaluates (the precision, threads and loader workers do not count);
# 4. leaves under $OUT/queue and $OUT/papers each run's model.safetensors + model.json, metrics.csv,
#    machine.json, config.yaml and log (not the checkpoints, too large to come back): ship the queue's with
#    scripts/ship_model.py. DEADLINE covers both queues.
# EXTRA: more overrides for every run (the CPU test: a tiny subset and one epoch).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
QUEUE="${QUEUE-default_ferplus7 votes_resnet18n}"
ROWS="${ROWS-all}"
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
start=$SECONDS
if [ -n "$QUEUE" ]; then
    "$PY" scripts/train_queue.py --root "$OUT/queue" --deadline "$DEADLINE" "${sets[@]}" $QUEUE || status=$?
fi
if [ -n "$ROWS" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/shared" "$work/run"
    ln -s "$(cd "$DATA" && pwd)" "$work/shared/data"
    for row in $ROWS; do
        args=()
        [ "$row" = all ] || args=("${row%%:*}")
        [[ "$row" == *:* ]] && args+=(--runs "${row#*:}")
        "$PY" -m ferkit papers config "${args[@]}" --out "$work/configs" > /dev/null
    done
    row_sets=(--set "trainer.threads=null")
    for extra in ${EXTRA:-}; do row_sets+=(--set "$extra"); done
    repo="$(pwd)"
    (cd "$work/run" && "$PY" "$repo/scripts/train_queue.py" --root "$OUT/papers" \
        --deadline "$((DEADLINE - (SECONDS - start)))" "${row_sets[@]}" "$work"/configs/*.yaml) || status=$?
fi
rm -rf "$OUT"/queue/*/checkpoints "$OUT"/queue/*/logs "$OUT"/papers/*/checkpoints "$OUT"/papers/*/logs
ls -l "$OUT"/queue/*/model.safetensors "$OUT"/papers/*/model.safetensors 2>/dev/null || true
exit $status
