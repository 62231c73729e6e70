#!/usr/bin/env bash
# Few-shot detection on soundscapes built from real UrbanSound8K clips (docs/detection.md):
# mgcl vs the sliding-window prototype baseline at K = 1, 3, 5 support events, sed_eval F1.
#
#   bash benchmarks/detection.sh [STORE] [SEEDS]
#
# Reported: clips of fold 10 only (the test fold); the defaults were chosen on soundscapes of
# fold 1 (`python benchmarks/detection_dev.py`) and checked on fold 2
# (`FOLD=2 OUT=results/detection-dev-fold2 bash benchmarks/detection.sh`). Writes
# results/detection/us8k/{results.json,results.md,f1.png,events.csv}; the recordings go to
# a temporary folder (they are rebuilt, seeded, in seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${1:-${MGCL_STORE:-$HOME/.cache/mgcl/features}}
SEEDS=${2:-5}
FOLD=${FOLD:-10}
OUT=${OUT:-results/detection}
DATA=${MGCL_SHARED_DATA:-../shared/data}
SC=$(mktemp -d /tmp/mgcl-soundscapes.XXXXXX)
trap 'rm -rf "$SC"' EXIT
mgcl benchmark --protocol detection --manifest us8k="$DATA/urbansound8k-3folds/manifest.csv" \
    --test-folds "$FOLD" --backbone aisfx --shots 1,3,5 --seeds "$SEEDS" \
    --targets car_horn,children_playing,dog_bark,drilling,gun_shot,jackhammer,siren,street_music \
    --duration 120 --soundscapes "$SC" --store "$STORE" --out "$OUT"
