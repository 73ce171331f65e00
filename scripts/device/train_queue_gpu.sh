#!/usr/bin/env bash
# The whole training queue in one call on a lent GPU (the device tool's `run`, 10 minutes at most):
#
#   run: bash scripts/device/train_queue_gpu.sh                       the papers' rows the tables lack
#   run: QUEUE="default_ferplus7 votes_resnet18n" ROWS= bash scripts/device/train_queue_gpu.sh
#                                                                     the shipped models' recipes
#
# 1. rebuilds FER2013 + FER+ from .devdata/fer.npz (scripts/device/pack_data.py, made here beforehand) unless
#    DATA names a folder that already holds them (the CPU test gives ../shared/data);
# 2. trains QUEUE (default: none; config names, each optionally with overrides) one after another with
#    scripts/train_queue.py in bf16 on the GPU into $OUT/queue;
# 3. then trains the papers' rows named in ROWS into $OUT/papers, each from its config as `ferkit papers
#    config --recipe $RECIPE` writes it (RECIPE default scratch48; ROWS words: "missing", the default, for
#    the rows the tables lack; "all"; PAPER; PAPER:KEY; empty for none), from a working folder where the
#    rows' data path (../shared/data/...) leads to DATA, so each run's config.yaml is its recipe's own (the
#    precision, threads and loader workers do not count). Each run folder is named <run name>-<time>-gpu:
#    back here, `cp -r <files>/papers/*-gpu runs/papers/` and `ferkit papers run PAPER --runs KEY` (with the
#    --set the row was trained with, if any) finds it and evaluates it, training nothing if it is complete;
# 4. stops at DEADLINE seconds (default 480: the call's 600 less unpacking and copying) for both, so every
#    run keeps its best model and last epoch even when time runs out, and leaves under $OUT each run's
#    model.safetensors + model.json, metrics.csv, machine.json, config.yaml and log (not the checkpoints,
#    too large to come back: a row cut short comes back partial and is trained again from its start there
#    or here). Ship the queue's models with scripts/ship_model.py.
# EXTRA: more overrides for every run (the CPU test: a tiny subset and one epoch). OUT, DATA and PYTHON may be
# relative to the repository's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
OUT="${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
QUEUE="${QUEUE-}"
ROWS="${ROWS-missing}"
RECIPE="${RECIPE:-scratch48}"
DEADLINE="${DEADLINE:-480}"
DATA="${DATA:-}"
PY="${PYTHON:-python}"
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac
work="$(mktemp -d)"
cleanup() {
    rm -rf "$work" "$OUT"/queue/*/checkpoints "$OUT"/queue/*/logs "$OUT"/papers/*/checkpoints "$OUT"/papers/*/logs
}
trap cleanup EXIT
extra_sets=()
for extra in ${EXTRA:-}; do extra_sets+=(--set "$extra"); done
# the rows' configs first: a mistake in ROWS fails here, before any training
rows=()
if [ -n "${ROWS// }" ]; then
    for row in $ROWS; do
        case "$row" in          # PAPER before the options (an optional positional argument)
            missing) args=(--missing) ;;
            all) args=() ;;
            *:*) args=("${row%%:*}" --runs "${row#*:}") ;;
            *) args=("$row") ;;
        esac
        written="$("$PY" -m ferkit papers config "${args[@]}" --recipe "$RECIPE" --out "$work/configs")"
        for path in $written; do
            [[ " ${rows[*]} " == *" $path "* ]] || rows+=("$path")
        done
    done
    stamp="$(date -u +%Y%m%d-%H%M%S)"
    for i in "${!rows[@]}"; do      # <run name>-<time>-gpu.yaml: train_queue.py names the run folder after it
        mv "${rows[$i]}" "${rows[$i]%.yaml}-$stamp-gpu.yaml"
        rows[$i]="${rows[$i]%.yaml}-$stamp-gpu.yaml"
    done
fi
if [ -z "$DATA" ]; then
    DATA=/tmp/ferkit_data
    "$PY" scripts/device/unpack_data.py .devdata/fer.npz "$DATA"
fi
DATA="$(cd "$DATA" && pwd)"
start=$SECONDS
status=0
if [ -n "${QUEUE// }" ]; then
    PRECISION="bf16-mixed"
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || PRECISION="32"
    sets=(--set "data.path=$DATA/ferplus" --set "trainer.precision=$PRECISION" --set "trainer.threads=null")
    "$PY" scripts/train_queue.py --root "$OUT/queue" --deadline "$DEADLINE" "${sets[@]}" "${extra_sets[@]}" \
        $QUEUE || status=$?
fi
if [ "${#rows[@]}" -gt 0 ]; then
    left=$(( ${DEADLINE%.*} - (SECONDS - start) ))
    if [ "$left" -lt 60 ]; then
        echo "the papers' rows: not started, ${left} s of the deadline left (${#rows[@]} rows)"
    else
        mkdir -p "$work/shared" "$work/run"
        ln -s "$DATA" "$work/shared/data"
        (cd "$work/run" && "$PY" "$repo/scripts/train_queue.py" --root "$OUT/papers" --deadline "$left" \
            --set "trainer.threads=null" "${extra_sets[@]}" "${rows[@]}") || status=$?
    fi
elif [ -n "${ROWS// }" ]; then
    echo "the papers' rows: none to train (ROWS=$ROWS)"
fi
ls -l "$OUT"/queue/*/model.safetensors "$OUT"/papers/*/model.safetensors 2>/dev/null || true
exit $status
