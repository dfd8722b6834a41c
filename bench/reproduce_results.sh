#!/usr/bin/env bash
# Reproduce the README's results: wash the shared UTKFace faces, train joint, gender-only and age-only
# with the same options and epoch budget, and print the test-split table. About 1 to 1.5 hours on 2 cores.
# (The bundled models are trained by bench/train_bundled.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
FACES=${FACES:-../shared/data/utkface}
EPOCHS=${EPOCHS:-20}
$PYTHON others/wash_data.py --dataset utkface --src "$FACES" --out data/utk --force --quiet
for script in joint/jointly.py gender/gender.py age/age.py; do
    run=runs/$(basename "$script" .py)
    $PYTHON "$script" --data data/utk --run "$run" --force --quiet --epochs "$EPOCHS" "$@"
done
$PYTHON bench/results_table.py runs/jointly runs/gender runs/age
