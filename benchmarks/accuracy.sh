#!/usr/bin/env bash
# Few-shot accuracy on the real audio in ../shared/data with the offline aisfx backbone.
# Writes results/us8k_fold10.json and results/env45.json (and prints the tables).
#   bash benchmarks/accuracy.sh [STORE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${MGCL_SHARED_DATA:-../shared/data}
STORE=${1:-${MGCL_STORE:-$HOME/.cache/mgcl/features}}
mkdir -p results
# UrbanSound8K: support drawn from folds 1 and 2, query = all of fold 10 (never used to choose anything)
mgcl evaluate --manifest "$DATA/urbansound8k-3folds/manifest.csv" --backbone aisfx --store "$STORE" \
  --methods prototype,linear_probe,tip_adapter,tip_adapter_f,mgcl,mgcl_f --shots 1,4,16 --seeds 5 \
  --test-fold 10 --out results/us8k_fold10.json
# env45: K clips per class for support, the other clips of the class are the query
mgcl evaluate --manifest "$DATA/env45/manifest.csv" --backbone aisfx --store "$STORE" \
  --methods prototype,linear_probe,tip_adapter,tip_adapter_f,mgcl,mgcl_f --shots 1,2 --seeds 5 \
  --out results/env45.json
