#!/usr/bin/env bash
# The README's "Results" section: `mgcl benchmark` on the real audio in ../shared/data with
# the offline aisfx backbone. Writes results/benchmark/{us8k,env45,us8k-episodes}/ (results.json,
# results.md, accuracy_vs_shots.png, confusion_matrix.png, ablation.png) and prints the tables.
#   bash benchmarks/report.sh [STORE_DIR]
# About an hour on 2 cores (US8K 14 min, env45 10 min, episodes 38 min) once the features
# are in the store (the first run embeds 2,821 clips and, for mgcl and mgcl_f, three audio views of
# every clip drawn into a support set: about 30 more minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${MGCL_SHARED_DATA:-../shared/data}
STORE=${1:-${MGCL_STORE:-$HOME/.cache/mgcl/features}}
METHODS=prototype,linear_probe,tip_adapter,tip_adapter_f,mgcl,mgcl_f

# UrbanSound8K folds 1, 2, 10: full-way K-shot, each fold in turn is the test fold (support from
# the other two), 3 seeds; ablation of the mgcl branches (cc: coarse cache, fc: fine cache / frame prototypes)
# and of their audio views of the support (views)
mgcl benchmark --manifest "urbansound8k-3folds=$DATA/urbansound8k-3folds/manifest.csv" --backbone aisfx \
  --store "$STORE" --methods "$METHODS" --shots 1,2,4,8,16 --seeds 3 --ablate cc,fc,views --out results/benchmark/us8k

# env45 (no folds, ~5 clips per class): K per class drawn at random, the other clips are the query
mgcl benchmark --manifest "env45=$DATA/env45/manifest.csv" --backbone aisfx --store "$STORE" \
  --methods "$METHODS" --shots 1,2,3 --seeds 5 --ablate cc,fc,views --out results/benchmark/env45

# 5-way 1- and 5-shot episodes on UrbanSound8K (queries from the episode's test fold, support
# from the other folds), 600 episodes, 95 % confidence intervals
mgcl benchmark --manifest "urbansound8k-3folds=$DATA/urbansound8k-3folds/manifest.csv" --backbone aisfx \
  --store "$STORE" --protocol episodes --ways 5 --shots 1,5 --episodes 600 --queries 15 \
  --methods prototype,linear_probe,tip_adapter,mgcl,mgcl_f --out results/benchmark/us8k-episodes
