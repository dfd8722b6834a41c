"""Training: the step, task balance, the epochs, early stopping and checkpoints.

A run folder holds everything a run writes (the reports by report.py, config.json by train_cli.py):

    config.json          the options (a resumed run reuses them)
    checkpoints/         tf.train.CheckpointManager: the state after the last finished epoch
    model/               the best epoch's model (model.json + weights.npz): what inference loads
    metrics.json         per-epoch history, the best epoch, and the test split's figures
    curves.png           loss and accuracy per epoch, train against valid, per task
    confusion_<task>.png confusion matrices on the test split
    logs/                TensorBoard logs (tensorboard --logdir runs)
"""
import contextlib
import json
import math
import os
import time
from dataclasses import asdict

import numpy as np

from agegender import evaluate, pipeline, store
from agegender.faces import COLOURS
from agegender.model import EXACT_AGES, TASK_LABEL, build_model, load_model, save_model, task_classes, without_heads
from agegender.progress import Progress
from agegender.quiet_tensorflow import tf
from agegender.report import RunReport, read_history, score_name
from agegender.train_options import TrainError

EXACT_AGE_SIGMA = 2.0  # years: exact ages are learned as a narrow Gaussian around the labelled age
RUNNING_STATISTICS_STEPS = 30  # batches that settle batch normalisation's averages after each epoch
# Tasks learned only to shape the shared features: no saved model has their heads, and early stopping
# does not count them. Race is one (--race-head): UTKFace labels it, and a model that shows it is a
# different product from the one this project offers.
AUXILIARY_TASKS = ("race",)


def soft_age_labels(years):
    """Target distributions over 0..100 years: a Gaussian of EXACT_AGE_SIGMA around each true age."""
    ages = tf.range(EXACT_AGES, dtype=tf.float32)
    weights = tf.exp(-0.5 * tf.square((ages[None, :] - tf.cast(years, tf.float32)[:, None]) / EXACT_AGE_SIGMA))
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def mixup_shares(faces, alpha, seed):
    """Each face's own share of its mixup blend, from Beta(alpha, alpha): the ratio of two Gamma draws."""
    own, other = tf.unstack(tf.random.stateless_gamma([2, faces], seed, alpha=alpha))
    return own / (own + other)


def mix_faces(images, shares):
    """Each uint8 face blended with its batch's mirror-order partner (the batch is shuffled, so a random
    face): share * own + (1 - share) * partner, rounded back to uint8."""
    shares = tf.reshape(shares, [-1] + [1] * (images.shape.rank - 1))
    own, partner = tf.cast(images, tf.float32), tf.cast(tf.reverse(images, axis=[0]), tf.float32)
    return tf.cast(tf.round(shares * own + (1 - shares) * partner), tf.uint8)


def predicted_values(task, logits):
    """Class indices, or for exact age the expected years of the softmax (DEX)."""
    if task == "exact_age":
        return tf.linalg.matvec(tf.nn.softmax(logits), tf.range(EXACT_AGES, dtype=tf.float32))
    return tf.argmax(logits, axis=1, output_type=tf.int32)


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


class TaskBalance(tf.Module):
    """Learned task weighting by homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).

    total = sum over tasks of exp(-s_t) * L_t + s_t, with one trainable s_t (a log-variance) per task.
    The original multiplied softmax outputs by two free scalars, which can grow without bound and has no
    meaning. Here each weight exp(-s_t) is positive by construction, and the + s_t term makes ignoring a
    task (s_t -> inf) cost as much as it saves: for a fixed loss the optimum is s_t = log L_t, so each
    task is weighted by the inverse of its own current loss, a bounded, interpretable balance.
    """

    def __init__(self, tasks):
        super().__init__(name="task_balance")
        self.log_variances = {task: tf.Variable(0.0, name=f"log_variance_{task}") for task in tasks}

    def __call__(self, task_losses):
        """The total for each face (or batch) from its loss per task."""
        return tf.add_n([tf.exp(-self.log_variances[task]) * loss + self.log_variances[task]
                         for task, loss in task_losses.items()])

    def values(self):
        return {task: float(variable.numpy()) for task, variable in self.log_variances.items()}


def class_weight_vectors(manifest, tasks):
    """Per task, weights n / (k * n_c) for each class c, from the train split's counts."""
    counts = {"gender": manifest["splits"]["train"]["gender"], "age_group": manifest["splits"]["train"]["age_group"]}
    weights = {}
    for task in tasks:
        task_counts = np.maximum(np.asarray(counts[task], dtype=np.float64), 1)
        weights[task] = tf.constant(task_counts.sum() / (len(task_counts) * task_counts), tf.float32)
    return weights


class Trainer:
    """One training run: the model, its optimiser and balance, and the run folder they are kept in.

    Under a tf.distribute strategy every replica takes config.batch_size faces a step (the global
    batch is that times the replicas; replica_step scales the loss). A cluster's non-chief workers
    keep their run folder in a temporary place (see train_cli.main).
    """

    def __init__(self, store_folder, run_folder, config, strategy=None):
        self.store_folder, self.run_folder, self.config = store_folder, run_folder, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.batch_size * self.replicas
        if config.sam_rho and self.replicas > 1:  # each replica would move the shared weights its own way
            raise TrainError(f"--sam-rho trains on one device; this strategy has {self.replicas} replicas: "
                             "add --strategy one")
        self.manifest = store.read_manifest(store_folder)
        self.channels = store.face_channels(self.manifest)  # the store decides: gray or colour faces
        self.age_edges = tuple(self.manifest["age_edges"])
        self.tasks = (tuple(config.tasks) + (("exact_age",) if config.exact_age else ())
                      + (("race",) if config.race_head else ()))
        self.shown_tasks = tuple(task for task in self.tasks if task not in AUXILIARY_TASKS)
        self.class_names = {task: task_classes(task, self.age_edges) for task in self.tasks}
        self.train_faces = self.manifest["splits"]["train"]["faces"]
        self.steps_per_epoch = self.train_faces // self.global_batch
        if self.steps_per_epoch == 0:
            raise TrainError(f"{store_folder}: {self.train_faces} training faces, fewer than one batch of "
                             f"{self.global_batch}; use a smaller --batch-size")
        if self.manifest["splits"]["valid"]["faces"] == 0:
            raise TrainError(f"{store_folder}: the valid split is empty; early stopping needs it")
        tf.random.set_seed(config.seed)
        # Training state that a checkpoint carries besides the weights: plain variables, outside the
        # strategy's scope, since every worker counts the same epochs by itself.
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.best_score = tf.Variable(-math.inf, dtype=tf.float64, name="best_score")
        self.epochs_without_improvement = tf.Variable(0, dtype=tf.int64, name="epochs_without_improvement")
        # The epoch's sums per task, (task, "loss"): the loss times the faces, (task, "score"): the faces
        # right (exact age: the years off). train_step adds to them where it runs and train_epoch reads
        # them once: a read every step would make the host wait for every step. Not checkpointed.
        self.epoch_sums = {(task, kind): tf.Variable(0.0, dtype=tf.float64, trainable=False)
                           for task in self.tasks for kind in ("loss", "score")}
        with self.strategy.scope():  # variables made here are mirrored on every replica
            self.build(config)

    def build(self, config):
        """The model, task balance, optimiser and their checkpoint."""
        self.model = build_model(config.architecture, {task: len(names) for task, names in self.class_names.items()},
                                 dropout=config.dropout, seed=config.seed, input_size=config.input_size,
                                 channels=self.channels, width=config.width)
        self.balance = TaskBalance(self.tasks) if len(self.tasks) > 1 else None
        self.teacher = load_teacher(config.teacher, self) if config.teacher else None
        if config.schedule == "cosine":
            schedule = tf.keras.optimizers.schedules.CosineDecay(
                config.learning_rate / 10, max(1, config.max_epochs - 1) * self.steps_per_epoch,
                warmup_target=config.learning_rate, warmup_steps=self.steps_per_epoch)
        elif config.schedule == "exponential":
            schedule = tf.keras.optimizers.schedules.ExponentialDecay(
                config.learning_rate, self.steps_per_epoch, config.learning_rate_decay, staircase=True)
        else:
            raise TrainError(f"unknown schedule {config.schedule!r}; choose exponential or cosine")
        self.variables = self.model.trainable_variables + (self.balance.trainable_variables if self.balance else ())
        # With --ema-decay the optimizer also keeps the weights' moving average (Keras's own EMA), a
        # checkpointed variable beside each weight.
        averaging = {"use_ema": bool(config.ema_decay), "ema_momentum": config.ema_decay}
        if config.optimizer == "sgd":
            self.optimizer = tf.keras.optimizers.SGD(schedule, momentum=config.momentum, **averaging)
        elif config.optimizer == "adam":
            self.optimizer = tf.keras.optimizers.Adam(schedule, **averaging)
        elif config.optimizer == "adamw":  # the decay shrinks the kernels only, as the L2 term would
            self.optimizer = tf.keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **averaging)
            kernels = {id(kernel) for kernel in self.model.kernels}
            self.optimizer.exclude_from_weight_decay([v for v in self.variables if id(v) not in kernels])
        else:
            raise TrainError(f"unknown optimizer {config.optimizer!r}; choose sgd, adam or adamw")
        # Weights n / (k * n_c) average 1 over the training faces, so weighted losses keep their scale.
        self.class_weights = class_weight_vectors(self.manifest, config.tasks) if config.class_weights else None
        # Its slots (momentum, Adam's moments) made now, inside the strategy's scope: made lazily inside
        # the first distributed step they would not be mirrored.
        self.optimizer.build(self.variables)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, epoch=self.epoch,
                                              best_score=self.best_score, balance=self.balance or tf.Module(),
                                              epochs_without_improvement=self.epochs_without_improvement)
        self.checkpoints = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.run_folder, "checkpoints"),
                                                      max_to_keep=2)
        self.history = []
        self.report = RunReport(self.run_folder, self.tasks, config.max_epochs)

    # -- the step ------------------------------------------------------------------------------------

    def face_losses(self, logits, batch_labels, training, teacher=None):
        """Per task, each face's loss: cross-entropy (exact age: against a Gaussian around the true age,
        plus the expected age's error in years); in training, label smoothing, class weights and children's
        gender weight too.
        teacher: per task, the teacher's probabilities for the same faces, blended into the targets
        (config.teacher_share of them) of the tasks it has."""
        losses = {}
        for task, task_logits in logits.items():
            truth = batch_labels[TASK_LABEL[task]]
            if task == "exact_age":
                targets = soft_age_labels(truth)
            else:
                classes = task_logits.shape[-1]
                smoothing = self.config.label_smoothing if training else 0.0  # valid losses stay plain
                targets = tf.one_hot(truth, classes) * (1 - smoothing) + smoothing / classes
            if teacher and task in teacher:
                targets = (1 - self.config.teacher_share) * targets + self.config.teacher_share * teacher[task]
            per_face = tf.nn.softmax_cross_entropy_with_logits(targets, task_logits)
            if task == "exact_age" and self.config.expected_age_loss:
                per_face += self.config.expected_age_loss * tf.abs(
                    predicted_values(task, task_logits) - tf.cast(truth, tf.float32))
            if training and self.class_weights is not None and task in self.class_weights:
                per_face *= tf.gather(self.class_weights[task], truth)
            if training and task == "gender" and self.config.child_gender_weight != 1:
                children = batch_labels["age"] < evaluate.ADULT_AGE
                per_face *= tf.where(children, self.config.child_gender_weight, 1.0)
            if task == "race":  # -1: the source does not say (IMDB-WIKI)
                per_face *= tf.cast(truth >= 0, tf.float32)
            losses[task] = per_face
        return losses

    def replica_step(self, images, batch_labels):
        """One replica's share of a step: its gradients are summed over the replicas by apply_gradients."""
        shares = None
        if self.config.mixup:
            seed = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
            shares = mixup_shares(tf.shape(images)[0], self.config.mixup, seed)
            images = mix_faces(images, shares)
        # The teacher sees the faces the network sees, augmented (and mixed) alike.
        teacher = (tf.nest.map_structure(tf.stop_gradient, self.teacher.calibrated_probabilities(images))
                   if self.teacher else None)
        with tf.GradientTape() as tape:
            total, face_losses, logits = self.replica_loss(images, batch_labels, teacher, shares)
        gradients = tape.gradient(total, self.variables)
        if self.config.sam_rho:
            gradients = self.sharpness_aware_gradients(gradients, images, batch_labels, teacher, shares)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        losses = {task: tf.nn.compute_average_loss(values, global_batch_size=self.global_batch)
                  for task, values in face_losses.items()}
        return losses, self.score_sums(logits, batch_labels)

    def replica_loss(self, images, batch_labels, teacher, shares):
        """The replica's loss to differentiate, with each face's loss per task and the logits."""
        logits = self.model(images, training=True)
        face_losses = self.face_losses(logits, batch_labels, training=True, teacher=teacher)
        if shares is not None:  # mixup: each loss is linear in the targets, so the blend of the two faces' losses
            partner_losses = self.face_losses(
                logits, {name: tf.reverse(labels, axis=[0]) for name, labels in batch_labels.items()},
                training=True, teacher=teacher)
            face_losses = {task: shares * loss + (1 - shares) * partner_losses[task]
                           for task, loss in face_losses.items()}
        objective = self.balance(face_losses) if self.balance else tf.add_n(list(face_losses.values()))
        l2 = (0.0 if self.config.optimizer == "adamw"  # its optimizer decays the kernels instead
              else self.config.weight_decay * tf.add_n([tf.nn.l2_loss(kernel) for kernel in self.model.kernels]))
        # Each replica sees its share of the global batch: these scale its loss so that the gradients
        # summed over the replicas are those of the global batch's mean loss, with L2 counted once.
        total = (tf.nn.compute_average_loss(objective, global_batch_size=self.global_batch)
                 + tf.nn.scale_regularization_loss(l2))
        return total, face_losses, logits

    def sharpness_aware_gradients(self, gradients, images, batch_labels, teacher, shares):
        """SAM's gradients (Foret et al. 2021): those at the network's weights moved rho along their own
        gradient (the first-order worst point within rho), for the step taken from where they were.
        The task balance's weights are not moved: they weigh the losses, they are not the network."""
        weights = self.model.trainable_variables  # self.variables begins with them, then the balance's
        length = tf.linalg.global_norm(gradients[:len(weights)])
        ascent = [gradient * (self.config.sam_rho / (length + 1e-12)) for gradient in gradients[:len(weights)]]
        for weight, move in zip(weights, ascent):
            weight.assign_add(move)
        with tf.GradientTape() as tape:
            total, _, _ = self.replica_loss(images, batch_labels, teacher, shares)
        sharp_gradients = tape.gradient(total, self.variables)
        for weight, move in zip(weights, ascent):
            weight.assign_sub(move)
        return sharp_gradients

    @tf.function(reduce_retracing=True)
    def train_step(self, images, batch_labels):
        """A step on every replica; adds the global batch's loss and score sums per task to epoch_sums."""
        losses, scores = self.strategy.run(self.replica_step, args=(images, batch_labels))

        def total(values):  # summed over the replicas, as float64 like the sums it is added to
            return tf.cast(self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None), tf.float64)
        for task in self.tasks:
            self.epoch_sums[task, "loss"].assign_add(total(losses[task]) * self.global_batch)  # a mean: times faces
            self.epoch_sums[task, "score"].assign_add(total(scores[task]))

    @tf.function(reduce_retracing=True)
    def eval_step(self, images, batch_labels):
        """Evaluation on one device, with the replicas' shared weights: losses, predictions, logits."""
        logits = self.model(images, training=False)
        losses = {task: tf.reduce_mean(values)
                  for task, values in self.face_losses(logits, batch_labels, training=False).items()}
        return losses, {task: predicted_values(task, task_logits) for task, task_logits in logits.items()}, logits

    @staticmethod
    def score_sums(logits, batch_labels):
        """Per task, the faces classified right, or for exact age the sum of absolute errors in years."""
        sums = {}
        for task, task_logits in logits.items():
            predicted, truth = predicted_values(task, task_logits), batch_labels[TASK_LABEL[task]]
            if task == "exact_age":
                sums[task] = tf.reduce_sum(tf.abs(predicted - tf.cast(truth, tf.float32)))
            else:
                sums[task] = tf.reduce_sum(tf.cast(tf.equal(predicted, truth), tf.float32))
        return sums

    # -- epochs --------------------------------------------------------------------------------------

    def train_dataset(self, epoch, augment=None):
        """The train split for this epoch, as batches of config.batch_size for each replica."""
        def replica_batches(context):
            return pipeline.split_dataset(
                self.store_folder, "train", context.get_per_replica_batch_size(self.global_batch), training=True,
                augment=self.config.augment if augment is None else augment, seed=self.config.seed + epoch,
                pipelines=(context.num_input_pipelines, context.input_pipeline_id),
                rotate_and_zoom=self.config.rotate_and_zoom, photo_conditions=self.config.photo_conditions,
                edge_backgrounds=self.config.edge_backgrounds, random_erasing=self.config.random_erasing)
        return self.strategy.distribute_datasets_from_function(replica_batches)

    @tf.function(reduce_retracing=True)
    def statistics_step(self, images):
        """A forward pass in training mode that changes no weight: batch normalisation's running
        averages move towards the statistics of the current weights."""
        self.strategy.run(lambda faces: self.model(faces, training=True), args=(images,))

    def refresh_running_statistics(self, epoch):
        """Batch normalisation's running averages, recomputed for the epoch's final weights.

        During an epoch they trail weights that keep changing; validated with them, the improved
        network's valid accuracy jumped between epochs (age groups 0.56 to 0.67 and back) while its
        training accuracy rose steadily. RUNNING_STATISTICS_STEPS passes over training faces (not
        augmented, as valid faces are not) with the weights fixed settle them (0.9 ** 30 = 4% left).
        """
        if not self.model.batch_norms:
            return
        for _, (images, _) in zip(range(RUNNING_STATISTICS_STEPS), self.train_dataset(epoch, augment=False)):
            self.statistics_step(images)

    def train_epoch(self, epoch, quiet, after_each_step):
        for variable in self.epoch_sums.values():
            variable.assign(0.0)
        faces = 0
        progress = None if quiet or not self.chief else Progress(
            self.steps_per_epoch * self.global_batch, f"epoch {epoch}/{self.config.max_epochs}", unit="images")
        started = time.perf_counter()
        # A fixed number of full steps: every replica (and worker) then takes the same steps.
        for _, (images, batch_labels) in zip(range(self.steps_per_epoch), self.train_dataset(epoch)):
            self.train_step(images, batch_labels)
            after_each_step()
            faces += self.global_batch
            if progress:
                progress.update(self.global_batch)
        # Read before the clock stops: the read waits for the last step.
        sums = {key: float(variable.numpy()) for key, variable in self.epoch_sums.items()}
        seconds = time.perf_counter() - started
        if progress:
            progress.close()
        metrics = {task: {"loss": sums[task, "loss"] / faces, score_name(task): sums[task, "score"] / faces}
                   for task in self.tasks}
        return metrics, faces / seconds

    def predict_split(self, split):
        """Truth, predictions, logits and mean loss per task over a whole split, and the faces' labels."""
        truth, predicted, logits = ({task: [] for task in self.tasks} for _ in range(3))
        loss_sums = {task: 0.0 for task in self.tasks}
        face_labels = {"gender": [], "age_group": [], "race": []}
        for images, batch_labels in pipeline.split_dataset(self.store_folder, split, 256):
            losses, predictions, batch_logits = self.eval_step(images, batch_labels)
            for task in self.tasks:
                truth[task].append(batch_labels[TASK_LABEL[task]].numpy())
                predicted[task].append(predictions[task].numpy())
                logits[task].append(batch_logits[task].numpy())
                loss_sums[task] += float(losses[task]) * int(images.shape[0])
            for name in face_labels:
                face_labels[name].append(batch_labels[name].numpy())
        concatenate = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        truth, predicted, logits = ({task: concatenate(parts) for task, parts in values.items()}
                                    for values in (truth, predicted, logits))
        count = max(1, len(next(iter(truth.values()))))
        losses = {task: loss_sums[task] / count for task in self.tasks}
        return truth, predicted, logits, losses, {name: concatenate(parts) for name, parts in face_labels.items()}

    def validate(self):
        truth, predicted, _, losses, _ = self.predict_split("valid")
        metrics = {}
        for task in self.tasks:
            if task == "exact_age":
                figures = evaluate.age_estimation_metrics(truth[task], predicted[task], self.age_edges)
                metrics[task] = {"loss": losses[task], "mae": figures["mae"], "cs5": figures["cs5"]}
            else:
                metrics[task] = {"loss": losses[task], "accuracy": float(np.mean(truth[task] == predicted[task]))}
        return metrics

    def fit(self, quiet=False, after_each_step=lambda: None):
        """Train until early stopping or max_epochs; then test the best epoch's model. Returns metrics.
        after_each_step() is called after each training step: the command line's stops on a Ctrl-C."""
        while int(self.epoch) < self.config.max_epochs:
            if int(self.epochs_without_improvement) >= self.config.patience:
                break
            epoch = int(self.epoch) + 1
            started = time.perf_counter()
            train_metrics, images_per_second = self.train_epoch(epoch, quiet, after_each_step)
            with self.averaged_weights():
                self.refresh_running_statistics(epoch)
                valid_metrics = self.validate()
                # The share of valid faces each task gets right (exact age: within 5 years), averaged.
                score = float(np.mean([valid_metrics[task].get("accuracy", valid_metrics[task].get("cs5"))
                                       for task in self.shown_tasks]))
                improved = score > float(self.best_score)
                if improved:
                    self.best_score.assign(score)
                    self.epochs_without_improvement.assign(0)
                    save_model(self.shown_model(), os.path.join(self.run_folder, "model"), self.model_metadata(epoch))
                else:
                    self.epochs_without_improvement.assign_add(1)
            entry = {"epoch": epoch, "train": train_metrics, "valid": valid_metrics, "valid_score": score,
                     "balance_log_variances": self.balance.values() if self.balance else {},
                     "learning_rate": float(self.optimizer.learning_rate),
                     "images_per_second": images_per_second, "seconds": time.perf_counter() - started}
            self.history.append(entry)
            self.report.write_epoch(self.history)
            self.epoch.assign(epoch)
            self.checkpoints.save(checkpoint_number=epoch)  # last: a crash before it redoes this epoch
            if self.chief:
                print(self.report.epoch_line(entry, improved), flush=True)
        return self.finish()

    @contextlib.contextmanager
    def averaged_weights(self):
        """With --ema-decay, the weights' moving average in place of the weights until the block ends (its
        batch normalisation averages refreshed inside it are for these weights); then the trained weights
        back, for training to go on from."""
        if not self.config.ema_decay:
            yield
            return
        trained = [variable.numpy() for variable in self.variables]
        self.optimizer.finalize_variable_values(self.variables)
        try:
            yield
        finally:
            for variable, value in zip(self.variables, trained):
                variable.assign(value)

    def shown_model(self):
        """The model as saved: without the heads of auxiliary tasks."""
        return without_heads(self.model, AUXILIARY_TASKS) if self.shown_tasks != self.tasks else self.model

    def model_metadata(self, epoch):
        return {"tasks": list(self.shown_tasks), "classes": {task: self.class_names[task] for task in self.shown_tasks},
                "age_edges": list(self.age_edges), "gender_coding": "0 = male, 1 = female",
                "preprocessing": f"{COLOURS[self.channels]} 128x128 uint8 face, framed as a UTKFace chip "
                                 "(faces.chip_box), standardised per image inside the model",
                "epoch": epoch, "trained_on": self.data_description(), "train_config": asdict(self.config)}

    def data_description(self):
        """What identifies the training data without naming this machine's folders: the datasets, their
        records, and the faces of each split."""
        return {"sources": [{"dataset": source["dataset"], "records": source["records"]}
                            for source in self.manifest["sources"]],
                "faces": {split: counts["faces"] for split, counts in self.manifest["splits"].items()}}

    def finish(self):
        """Restore the best epoch's weights, calibrate them on the valid split, measure them on the test
        split, write the reports."""
        model_folder = os.path.join(self.run_folder, "model")
        best, description = load_model(model_folder)
        self.model.assign({**self.model.weights(), **best.weights()})  # auxiliary heads: as they are
        truth, _, logits, _, _ = self.predict_split("valid")
        self.model.temperatures.update({task: evaluate.fit_temperature(logits[task], truth[task])
                                        for task in self.shown_tasks if task != "exact_age"})
        save_model(self.shown_model(), model_folder, {**description, "temperatures": self.model.temperatures})
        truth, predicted, logits, _, faces = self.predict_split("test")
        probabilities = {task: evaluate.calibrated(logits[task], self.model.temperatures[task])
                         for task in self.shown_tasks}
        shown_classes = {task: self.class_names[task] for task in self.shown_tasks}
        test = evaluate.report(shown_classes, truth, predicted, faces, self.age_edges, probabilities)
        self.report.plot_confusions(test)
        return self.report.write_metrics(self.history, test)

    def restore(self, checkpoints):
        """Continue from the last checkpoint in the folder `checkpoints`: weights, optimiser, epoch,
        early-stopping state, history."""
        latest = tf.train.latest_checkpoint(checkpoints)
        if latest is None:
            return False
        run = os.path.dirname(checkpoints)
        trained_channels = saved_channels(run)
        if trained_channels != self.channels:
            raise TrainError(f"{self.store_folder}: the store holds {COLOURS[self.channels]} faces but the run {run} "
                             f"trained on {COLOURS[trained_channels]} ones; resume it with the store it trained "
                             "on, or start a new run")
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        self.history = read_history(run, int(self.epoch))
        return True


def load_teacher(folder, trainer):
    """The saved model a run learns from beside the labels (--teacher), once it is known to fit the run:
    faces of the store's channels, the store's age groups, and at least one of the run's tasks."""
    teacher, description = load_model(folder)
    shared = [task for task in trainer.tasks if task in teacher.class_counts]
    if teacher.channels != trainer.channels:
        raise TrainError(f"{folder}: the teacher takes {COLOURS[teacher.channels]} faces but the store "
                         f"{trainer.store_folder} holds {COLOURS[trainer.channels]} ones; use a teacher trained on it")
    if not shared:
        raise TrainError(f"{folder}: the teacher answers {', '.join(teacher.class_counts)}, none of the tasks this "
                         f"run learns ({', '.join(trainer.tasks)}); use a teacher trained on one of them")
    if "age_group" in shared and tuple(description["age_edges"]) != trainer.age_edges:
        raise TrainError(f"{folder}: the teacher's age groups end at {description['age_edges']}, the store's at "
                         f"{list(trainer.age_edges)}; use a teacher trained on this store's groups")
    return teacher


def saved_channels(run):
    """The channels of the faces a run folder's model trains on, from its config.json (1 for runs written
    before colour stores)."""
    with open(os.path.join(run, "config.json"), encoding="utf-8") as file:
        return json.load(file).get("channels", 1)


def checkpointed_epochs(run):
    """The epochs --resume would continue after: those of the last checkpoint written whole."""
    latest = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    return int(latest.rsplit("-", 1)[-1]) if latest else 0
