"""Where training runs: TensorFlow's distribution strategies, chosen by --strategy, and which process of
a cluster writes the run folder."""
import os

from agegender.quiet_tensorflow import tf
from agegender.train_options import TrainError


def make_strategy(name="auto"):
    """TensorFlow's own distribution engine, chosen by --strategy.

    one: the default strategy (one device). mirrored: MirroredStrategy over all local GPUs, or over the
    logical CPU devices when there is no GPU. multiworker: MultiWorkerMirroredStrategy, with the cluster
    and this process's place in it read from the TF_CONFIG environment variable. auto: multiworker when
    TF_CONFIG is set, mirrored when there are several GPUs, else one.
    """
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        name = "multiworker" if os.environ.get("TF_CONFIG") else "mirrored" if len(gpus) > 1 else "one"
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task); see README")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes the run folder: always, except for the non-chief workers of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    chief_in_cluster = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and not chief_in_cluster)
