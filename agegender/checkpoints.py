"""A run's checkpoints (tf.train.CheckpointManager in <run>/checkpoints/): the training state after each
finished epoch, which --resume continues from."""
import json
import os
import shutil

from agegender.faces import COLOURS
from agegender.quiet_tensorflow import tf
from agegender.train_options import TrainError


class RunCheckpoints:
    """The last two epochs' state of the variables (and modules) in `state`, in `run`/checkpoints."""

    def __init__(self, run, **state):
        self.run = run
        self.checkpoint = tf.train.Checkpoint(**state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(run, "checkpoints"), max_to_keep=2)

    def save(self, epoch):
        self.manager.save(checkpoint_number=epoch)

    def restore(self, run, store_folder, channels):
        """The state of `run`'s last checkpoint, if it has one (False if not), once the run is known to
        have trained on faces of the store's channels."""
        latest = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
        if latest is None:
            return False
        trained_channels = saved_channels(run)
        if trained_channels != channels:
            raise TrainError(f"{store_folder}: the store holds {COLOURS[channels]} faces but the run {run} "
                             f"trained on {COLOURS[trained_channels]} ones; resume it with the store it trained "
                             "on, or start a new run")
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return True


def saved_channels(run):
    """The channels of the faces a run folder's model trains on, from its config.json (1 for runs written
    before colour stores)."""
    with open(os.path.join(run, "config.json"), encoding="utf-8") as file:
        return json.load(file).get("channels", 1)


def checkpointed_epochs(run):
    """The epochs --resume would continue after: those of the last checkpoint written whole."""
    latest = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    return int(latest.rsplit("-", 1)[-1]) if latest else 0


def remove_unfinished_checkpoint(run):
    """Remove the folder tf.train.CheckpointManager fills while it saves the epoch after the last whole
    one (`ckpt-<epoch>_temp`, merged into the checkpoint and deleted once whole): a save that failed or
    was killed leaves it."""
    unfinished = os.path.join(run, "checkpoints", f"ckpt-{checkpointed_epochs(run) + 1}_temp")
    shutil.rmtree(unfinished, ignore_errors=True)
