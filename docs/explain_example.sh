#!/usr/bin/env bash
# Re-creates docs/explain_dog_bark.png: mgcl_f (aisfx) fitted on 8 clips per class drawn
# (seed 0) from UrbanSound8K folds 1-2 of ../shared/data, then `mgcl explain` on a fold-10 dog bark.
#   bash docs/explain_example.sh [STORE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(cd "${MGCL_SHARED_DATA:-../shared/data}" && pwd)
STORE=${1:-${MGCL_STORE:-$HOME/.cache/mgcl/features}}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python - "$DATA/urbansound8k-3folds" "$WORK/support.csv" <<'PY'
import csv, random, sys
root, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{root}/manifest.csv")))
random.seed(0)
with open(out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["path", "label"])
    for label in sorted({r["label"] for r in rows}):
        pool = [r for r in rows if r["label"] == label and r["fold"] in ("1", "2")]
        w.writerows([f"{root}/{r['path']}", label] for r in random.sample(pool, 8))
PY
mgcl fit --manifest "$WORK/support.csv" --backbone aisfx --method mgcl_f --store "$STORE" --out "$WORK/model"
mgcl explain "$WORK/model" "$DATA/urbansound8k-3folds/audio/fold10/100795-3-0-0.ogg" --store "$STORE" \
  --out docs/explain_dog_bark.png --json
