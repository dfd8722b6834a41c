#!/usr/bin/env bash
# Train one of the bundled models on the shared UTKFace faces, then print its valid figures beside the
# bundled one's (what a run is chosen on; its test figures are looked at once, when it is bundled):
#   bash bench/train_bundled.sh improved --seed 1   # agegender/models/improved, the default model (about an hour on 2 cores)
#   bash bench/train_bundled.sh joint      # agegender/models/joint, the original CNN for coursework (about an hour)
# Both recipes: a cosine schedule with one warm-up epoch, rotations and zooms, label smoothing 0.1, and
# every epoch run (no early stop); the improved network also learns the age in years, with the expected
# age's error in the loss, at 96 px, and half its faces have their edge feathered into a background;
# both learn UTKFace's race as an auxiliary task that the saved model leaves out; the original network
# also learns from agegender/models/improved's answers, given six views of each face (bench/RESULTS.md: what each
# choice gained). More options go to joint/jointly.py. Ctrl-C, then the same command continues
# from the last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
FACES=${FACES:-../shared/data/utkface}
usage="usage: bash bench/train_bundled.sh improved|joint [joint/jointly.py options]"
model=${1:?$usage}; shift
teacher=out/improved-six  # the original network's (joint/recipes/joint.txt): agegender/models/improved with six views of each face, made below
case $model in
    improved|joint) options="@joint/recipes/$model.txt" ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
RUN=${RUN:-runs/bundled-$model}
[ -d data/utk ] || $PYTHON others/wash_data.py --dataset utkface --src "$FACES" --out data/utk --quiet
if [ "$model" = joint ]; then  # the teacher, its temperatures fitted for the six views on valid
    rm -rf "$teacher" && mkdir -p out && cp -r agegender/models/improved "$teacher"
    $PYTHON joint/test_model.py --data data/utk --split valid --model "$teacher" --calibrate --flip-average \
        --zooms 1 1.1 0.9 --out "$teacher/evaluation" > /dev/null
fi
resume=$([ -f "$RUN/config.json" ] && echo --resume || true)
# shellcheck disable=SC2086  # the options are words
$PYTHON joint/jointly.py --data data/utk --run "$RUN" $resume --quiet $options "$@"
$PYTHON bench/ablation_table.py "agegender/models/$model" "$RUN"
echo "to bundle it: cp $RUN/model/model.json $RUN/model/weights.npz $RUN/metrics.json agegender/models/$model/"
if [ "$model" = joint ]; then  # as bundled: each face averaged with its mirror image (bench/RESULTS.md)
    echo "then: $PYTHON joint/test_model.py --data data/utk --model agegender/models/joint --calibrate --flip-average"
else
    echo "then its test figures, once: $PYTHON bench/results_table.py agegender/models/$model"
fi
