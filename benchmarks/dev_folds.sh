#!/usr/bin/env bash
# The development protocol: every default in mgcl was chosen on UrbanSound8K folds 1 and 2
# against each other (support from one, every clip of the other as query, both directions),
# never on fold 10 or env45, which are only reported. This script re-runs that comparison
# for mgcl_f's view weight (default 1/K per view vs 1, a clip's weight) next to the linear
# probe and writes results/dev/*.json plus a summary over both directions.
#   bash benchmarks/dev_folds.sh [STORE_DIR] [SEEDS]
# About 15 minutes on 2 cores once the features and audio views are in the store.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(cd "${MGCL_SHARED_DATA:-../shared/data}" && pwd)
STORE=${1:-${MGCL_STORE:-$HOME/.cache/mgcl/features}}
SEEDS=${2:-3}
OUT=results/dev
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
# the dev manifest: folds 1 and 2 only (absolute paths), so that --test-fold 2 draws support from fold 1
MANIFEST="$WORK/urbansound8k-folds1-2/manifest.csv"
mkdir -p "$(dirname "$MANIFEST")"
python - "$DATA/urbansound8k-3folds" "$MANIFEST" <<'PY'
import csv, sys
root, out = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(f"{root}/manifest.csv")) if r["fold"] in ("1", "2")]
with open(out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["path", "label", "fold"])
    w.writerows([f"{root}/{r['path']}", r["label"], r["fold"]] for r in rows)
PY
for test in 1 2; do
  mgcl evaluate --manifest "$MANIFEST" --backbone aisfx --store "$STORE" --methods linear_probe,mgcl_f \
    --shots 1,2,4,8,16 --seeds "$SEEDS" --test-fold "$test" --out "$OUT/view_weight_default_test$test.json"
  mgcl evaluate --manifest "$MANIFEST" --backbone aisfx --store "$STORE" --methods mgcl_f \
    --param mgcl_f.view_weight=1 --shots 1,2,4,8,16 --seeds "$SEEDS" --test-fold "$test" \
    --out "$OUT/view_weight_1_test$test.json"
done
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = {}
for variant in ("default", "1"):
    for test in ("1", "2"):
        for r in json.load(open(f"{out}/view_weight_{variant}_test{test}.json"))["results"]:
            name = r["method"] if r["method"] != "mgcl_f" else f"mgcl_f (view_weight {'1/K' if variant == 'default' else 1})"
            rows.setdefault(name, {}).setdefault(r["shots"], []).append(r["accuracy_mean"])
shots = sorted({k for v in rows.values() for k in v})
print("\ndev folds 1 <-> 2, accuracy (%) averaged over both directions:")
print(f"{'method':28s}" + "".join(f"{k:>9d}-shot" for k in shots))
for name, by_k in rows.items():
    print(f"{name:28s}" + "".join(f"{sum(by_k[k]) / len(by_k[k]):14.2f}" for k in shots))
PY
