"""A standard network from scratch beside ours: Keras's MobileNetV3-Small (weights=None, nothing
downloaded) as the trunk, trained by this project's Trainer on the same store, with the same heads,
losses, augmentation and schedule as agegender/models/improved's recipe (bench/train_bundled.sh), then measured
on the valid split (what a choice is made on) and the test split.

    python bench/reference_network.py --data data/utk --run runs/mobilenetv3 --seed 1
    python bench/reference_network.py --data data/utk --run runs/mobilenetv3 --seed 1 --resume  # after Ctrl-C

The published from-scratch MobileNetV3-Small figures (92.6% gender, MAE 5.15) came from another split
of UTKFace; this gives the same network's figures on ours. bench/RESULTS.md has what it measured.
"""
import argparse
import os
import sys
from dataclasses import asdict

import numpy as np

from agegender import atomic
from agegender import model as networks
from agegender.quiet_tensorflow import tf
from agegender.train import Trainer
from agegender.train_options import TrainConfig


class MobileNetV3Small(networks.OriginalCNN):
    """Keras's MobileNetV3-Small trunk (Howard et al. 2019; global average pool, 576 features) under
    this project's heads, preprocessing and temperatures. Keras keeps the trunk's variables, so they
    are listed here by their Keras paths for the optimiser, L2 and saving."""

    architecture = "mobilenetv3"
    feature_size = 576
    head_size = 128

    def build_trunk(self):
        self.backbone = tf.keras.applications.MobileNetV3Small(
            input_shape=(self.input_size, self.input_size, self.channels), include_top=False, weights=None,
            pooling="avg", include_preprocessing=False)  # preprocess() standardises each face already
        # Keras builds these with momentum 0.999; the Trainer's 30 refresh steps are sized for 0.9
        # (0.9 ** 30 = 4% of the stale average left, 0.999 ** 30 = 97%), as our own batch norms use.
        for layer in self.backbone.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                layer.momentum = 0.9

    def trunk(self, x, training, seed=None):
        return self.dropped(self.backbone(x, training=training), training, seed, 0)

    def head_variables(self):
        return [variable for pair in self.heads.values() for layer in pair for variable in layer]

    @property
    def trainable_variables(self):
        return tuple(self.head_variables() + [v.value for v in self.backbone.trainable_variables])

    @property
    def variables(self):
        return tuple(self.head_variables() + [v.value for v in self.backbone.variables])

    @property
    def kernels(self):
        return [v for v in self.trainable_variables if v.name.split(":")[0].endswith("kernel")]

    @property
    def batch_norms(self):  # non-empty: the Trainer then refreshes the running statistics each epoch
        return [layer for layer in self.backbone.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]

    def weights(self):
        heads = {v.name.split(":")[0]: v.numpy() for v in self.head_variables()}
        return {**heads, **{f"backbone/{v.path}": v.numpy() for v in self.backbone.variables}}

    def assign(self, weights):
        for v in self.head_variables():
            v.assign(weights[v.name.split(":")[0]])
        for v in self.backbone.variables:
            v.assign(weights[f"backbone/{v.path}"])


networks.ARCHITECTURES[MobileNetV3Small.architecture] = MobileNetV3Small

# agegender/models/improved's recipe (bench/train_bundled.sh), its architecture and input size aside.
RECIPE = dict(schedule="cosine", rotate_and_zoom=True, label_smoothing=0.1, race_head=True, exact_age=True,
              expected_age_loss=0.25, edge_backgrounds=True, max_epochs=36, patience=36)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=RECIPE["max_epochs"])
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--resume", action="store_true")
    arguments = parser.parse_args()
    if os.path.exists(arguments.run) and not arguments.resume:
        sys.exit(f"error: {arguments.run}: exists; add --resume or choose another --run")
    config = TrainConfig(architecture=MobileNetV3Small.architecture, seed=arguments.seed,
                         input_size=arguments.input_size,
                         **{**RECIPE, "max_epochs": arguments.epochs, "patience": arguments.epochs})
    os.makedirs(arguments.run, exist_ok=True)
    trainer = Trainer(arguments.data, arguments.run, config)
    atomic.write_json(os.path.join(arguments.run, "config.json"),  # what restore() reads, as train_cli writes it
                      {**asdict(config), "data": os.path.abspath(arguments.data), "channels": trainer.channels})
    if arguments.resume and trainer.restore(arguments.run):
        print(f"resuming after epoch {int(trainer.epoch)}", flush=True)
    parameters = sum(int(np.prod(v.shape)) for v in trainer.model.trainable_variables)
    print(f"MobileNetV3-Small at {config.input_size} px: {parameters:,} trainable parameters", flush=True)
    metrics = trainer.fit(quiet=True)
    best = metrics["history"][metrics["best_epoch"] - 1]
    print(f"best epoch {metrics['best_epoch']}: valid score {best['valid_score']:.4f}")
    for task, figures in metrics["test"].items():
        print(f"  test {task}: {figures}")


if __name__ == "__main__":
    main()
