#!/usr/bin/env bash
# Train the default bundled model (models/improved) on the shared UTKFace faces: the improved architecture
# with exact age, faces seen at 96 px, a cosine schedule, rotations and zooms, label smoothing, and the
# expected age's error in the loss (bench/RESULTS.md: what the recipe gained). About 1-1.5 hours on 2
# cores; Ctrl-C, then the same command continues from the last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
FACES=${FACES:-../shared/data/utkface}
RUN=${RUN:-runs/best}
[ -d data/utk ] || $PYTHON others/wash_data.py --dataset utkface --src "$FACES" --out data/utk --quiet
resume=$([ -f "$RUN/config.json" ] && echo --resume || true)
$PYTHON joint/jointly.py --data data/utk --run "$RUN" $resume --quiet --arch improved --exact-age \
    --input-size 96 --schedule cosine --rotate-and-zoom --label-smoothing 0.1 --expected-age-loss 0.25 \
    --epochs 36 --patience 36 "$@"
$PYTHON bench/results_table.py models/improved "$RUN"
echo "to bundle it: cp $RUN/model/model.json $RUN/model/weights.npz $RUN/metrics.json models/improved/"
