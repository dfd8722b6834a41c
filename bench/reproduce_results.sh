#!/usr/bin/env bash
# Reproduce the README's results: wash the shared UTKFace faces, train joint, gender-only and age-only
# with the same options and epoch budget, and print the test-split table. About 1 to 1.5 hours on 2 cores.
# The joint run's model/ becomes the bundled model in models/joint/.
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
# Bundle the joint model: what every inference script uses unless --model names another.
mkdir -p models/joint
cp runs/jointly/model/model.json runs/jointly/model/weights.npz runs/jointly/metrics.json models/joint/
# As bundled: calibrated on the valid split, each face averaged with its mirror image (bench/RESULTS.md).
$PYTHON joint/test_model.py --data data/utk --model models/joint --calibrate --flip-average --out out/evaluation-joint
