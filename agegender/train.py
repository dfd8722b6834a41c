"""Training: the step, the epochs, early stopping; the best epoch calibrated and tested at the end.

A run folder holds everything a run writes (the reports by report.py, config.json by train_cli.py):

    config.json          the options (a resumed run reuses them)
    checkpoints/         checkpoints.py: the state after the last finished epoch
    model/               the best epoch's model (model.json + weights.npz): what inference loads
    metrics.json         per-epoch history, the best epoch, and the test split's figures
    curves.png           loss and accuracy per epoch, train against valid, per task
    confusion_<task>.png confusion matrices on the test split
    logs/                TensorBoard logs (tensorboard --logdir runs)
"""
import math
import os
import sys
import time
from dataclasses import asdict

import numpy as np

from agegender import evaluate, losses, pipeline, scoring, store
from agegender.checkpoints import RunCheckpoints
from agegender.distribute import is_chief
from agegender.faces import COLOURS
from agegender.model import TASK_LABEL, build_model, load_model, save_model, task_classes, without_heads
from agegender.predict import Predictor
from agegender.progress import Progress
from agegender.quiet_tensorflow import tf
from agegender.report import RunReport, read_history, score_name
from agegender.train_options import AUXILIARY_TASKS, TrainError

RUNNING_STATISTICS_STEPS = 30  # batches that settle batch normalisation's averages after each epoch


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
        self.global_batch = config.batch_size * self.strategy.num_replicas_in_sync
        manifest = store.read_manifest(store_folder)
        self.channels = store.face_channels(manifest)  # the store decides: gray or colour faces
        self.age_edges = tuple(manifest["age_edges"])
        self.tasks, self.shown_tasks = config.learned_tasks, config.shown_tasks
        self.class_names = {task: task_classes(task, self.age_edges) for task in self.tasks}
        self.steps_per_epoch = steps_per_epoch(manifest, store_folder, self.global_batch)
        # Training state a checkpoint carries besides the weights: plain variables, outside the
        # strategy's scope, since every worker counts the same epochs by itself.
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.best_score = tf.Variable(-math.inf, dtype=tf.float64, name="best_score")
        self.epochs_without_improvement = tf.Variable(0, dtype=tf.int64, name="epochs_without_improvement")
        # Per task, the epoch's loss times faces and faces right (exact age: years off), summed where the
        # steps run and read once an epoch: a read every step would make the host wait for every step.
        self.epoch_sums = {(task, kind): tf.Variable(0.0, dtype=tf.float64, trainable=False)
                           for task in self.tasks for kind in ("loss", "score")}
        with self.strategy.scope():  # variables made here are mirrored on every replica
            self.model = build_model(config.architecture, {task: len(names) for task, names in self.class_names.items()},
                                     dropout=config.dropout, seed=config.seed, input_size=config.input_size,
                                     channels=self.channels)
            self.balance = losses.TaskBalance(self.tasks)
            self.teacher = load_teacher(config.teacher, self) if config.teacher else None
            self.variables = self.model.trainable_variables + self.balance.trainable_variables
            self.optimizer = make_optimizer(config, self.steps_per_epoch)
            # Its slots (momentum, Adam's moments) made now, inside the strategy's scope: made lazily inside
            # the first distributed step they would not be mirrored.
            self.optimizer.build(self.variables)
        self.checkpoints = RunCheckpoints(run_folder, model=self.model, optimizer=self.optimizer, epoch=self.epoch,
                                          best_score=self.best_score, balance=self.balance,
                                          epochs_without_improvement=self.epochs_without_improvement)
        self.history = []
        self.report = RunReport(run_folder, self.tasks, config.max_epochs)
        self.description = model_description(config, manifest, self.shown_tasks, self.class_names, self.channels)

    # -- the step ------------------------------------------------------------------------------------

    def replica_step(self, images, labels):
        """One gradient step on one replica's share of the batch: forward, each task's loss, the task
        balance, L2, gradient, apply (apply_gradients sums the gradients over the replicas)."""
        config = self.config
        # Dropout drawn from the step's number (and replica's): a resumed run drops the same units.
        step_seed = tf.random.experimental.stateless_fold_in([config.seed, 0], self.optimizer.iterations)
        seed = tf.random.experimental.stateless_fold_in(
            step_seed, tf.distribute.get_replica_context().replica_id_in_sync_group)
        # The teacher sees the faces the network sees, augmented alike.
        teacher = self.teacher.calibrated_probabilities(images) if self.teacher else None
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True, seed=seed)
            face_losses = losses.face_losses(logits, labels, config.label_smoothing, config.expected_age_loss,
                                             teacher, config.teacher_share)
            l2 = config.weight_decay * tf.add_n([tf.nn.l2_loss(kernel) for kernel in self.model.kernels])
            # Each replica sees its share of the global batch: these scale its loss so that the gradients
            # summed over the replicas are those of the global batch's mean loss, with L2 counted once.
            total = (tf.nn.compute_average_loss(self.balance(face_losses), global_batch_size=self.global_batch)
                     + tf.nn.scale_regularization_loss(l2))
        gradients = tape.gradient(total, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        task_losses = {task: tf.nn.compute_average_loss(values, global_batch_size=self.global_batch)
                       for task, values in face_losses.items()}
        return task_losses, losses.score_sums(logits, labels)

    @tf.function(reduce_retracing=True)
    def train_step(self, images, labels):
        """A step on every replica; adds the global batch's loss and score sums per task to epoch_sums."""
        task_losses, scores = self.strategy.run(self.replica_step, args=(images, labels))

        def total(values):  # summed over the replicas, as float64 like the sums it is added to
            return tf.cast(self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None), tf.float64)
        for task in self.tasks:
            self.epoch_sums[task, "loss"].assign_add(total(task_losses[task]) * self.global_batch)  # a mean: times faces
            self.epoch_sums[task, "score"].assign_add(total(scores[task]))

    @tf.function(reduce_retracing=True)
    def eval_step(self, images, labels):
        """Each face's loss per task and the predictions, on one device with the replicas' shared weights."""
        logits = self.model(images, training=False)
        return (losses.face_losses(logits, labels, expected_age_loss=self.config.expected_age_loss),
                {task: losses.predicted_values(task, values) for task, values in logits.items()})

    # -- epochs --------------------------------------------------------------------------------------

    def train_dataset(self, epoch, augment=None):
        """The train split for this epoch, as batches of config.batch_size for each replica."""
        def replica_batches(context):
            return pipeline.split_dataset(
                self.store_folder, "train", context.get_per_replica_batch_size(self.global_batch), training=True,
                augment=self.config.augment if augment is None else augment, seed=self.config.seed + epoch,
                pipelines=(context.num_input_pipelines, context.input_pipeline_id),
                rotate_and_zoom=self.config.rotate_and_zoom, edge_backgrounds=self.config.edge_backgrounds)
        return self.strategy.distribute_datasets_from_function(replica_batches)

    @tf.function(reduce_retracing=True)
    def statistics_step(self, images):
        """A forward pass in training mode that changes no weight: batch normalisation's running
        averages move towards the statistics of the current weights (dropout, after them, is moot)."""
        self.strategy.run(lambda faces: self.model(faces, training=True, seed=[self.config.seed, 1]), args=(images,))

    def refresh_running_statistics(self, epoch):
        """Batch normalisation's running averages, recomputed for the epoch's final weights.

        During an epoch they trail weights that keep changing; validated with them, the improved
        network's valid accuracy jumped between epochs (age groups 0.56 to 0.67 and back) while its
        training accuracy rose steadily. RUNNING_STATISTICS_STEPS passes over training faces (not
        augmented, as valid faces are not) with the weights fixed settle them (0.9 ** 30 = 4% left).
        """
        if self.model.batch_norms:
            for _, (images, _) in zip(range(RUNNING_STATISTICS_STEPS), self.train_dataset(epoch, augment=False)):
                self.statistics_step(images)

    def train_epoch(self, epoch, quiet, after_each_step):
        for variable in self.epoch_sums.values():
            variable.assign(0.0)
        faces = self.steps_per_epoch * self.global_batch
        progress = None if quiet or not self.chief else Progress(
            faces, f"epoch {epoch}/{self.config.max_epochs}", unit="images")
        started = time.perf_counter()
        # A fixed number of full steps: every replica (and worker) then takes the same steps.
        for _, (images, labels) in zip(range(self.steps_per_epoch), self.train_dataset(epoch)):
            self.train_step(images, labels)
            after_each_step()
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

    def fit(self, quiet=False, after_each_step=lambda: None):
        """Train until early stopping or max_epochs; then test the best epoch's model. Returns metrics.
        after_each_step() is called after each training step: the command line's stops on a Ctrl-C."""
        os.makedirs(self.run_folder, exist_ok=True)  # the command line made it; a library caller may not have
        while int(self.epoch) < self.config.max_epochs:
            if int(self.epochs_without_improvement) >= self.config.patience:
                break
            epoch = int(self.epoch) + 1
            started = time.perf_counter()
            train_metrics, images_per_second = self.train_epoch(epoch, quiet, after_each_step)
            self.refresh_running_statistics(epoch)
            valid_metrics = validate(self.eval_step, self.store_folder, self.tasks, self.age_edges)
            # The share of valid faces each task gets right (exact age: within 5 years), averaged.
            score = float(np.mean([valid_metrics[task].get("accuracy", valid_metrics[task].get("cs5"))
                                   for task in self.shown_tasks]))
            improved = score > float(self.best_score)
            if improved:
                self.best_score.assign(score)
                self.epochs_without_improvement.assign(0)
                shown = without_heads(self.model, AUXILIARY_TASKS) if self.shown_tasks != self.tasks else self.model
                save_model(shown, os.path.join(self.run_folder, "model"), {**self.description, "epoch": epoch})
            else:
                self.epochs_without_improvement.assign_add(1)
            entry = {"epoch": epoch, "train": train_metrics, "valid": valid_metrics, "valid_score": score,
                     "balance_log_variances": self.balance.values(),
                     "learning_rate": float(self.optimizer.learning_rate),
                     "images_per_second": images_per_second, "seconds": time.perf_counter() - started}
            self.history.append(entry)
            self.report.write_epoch(self.history)
            self.epoch.assign(epoch)
            self.checkpoints.save(epoch)  # last: a crash before it redoes this epoch
            if self.chief:
                print(self.report.epoch_line(entry, improved), flush=True)
        return self.finish()

    def finish(self):
        """The best epoch's model calibrated on the valid split and measured on the test split, as
        joint/test_model.py --calibrate does; its weights and temperatures back in self.model."""
        model_folder = os.path.join(self.run_folder, "model")
        try:
            scoring.calibrate(model_folder, self.store_folder, flip_average=False)
        except store.StoreError as error:  # too few valid faces to fit a temperature: the model stays as trained
            print(f"warning: temperatures left at 1: {error}", file=sys.stderr)
        best, _ = load_model(model_folder)
        self.model.assign({**self.model.weights(), **best.weights()})  # auxiliary heads: as they are
        self.model.temperatures.update(best.temperatures)
        predictor = Predictor(model_folder)
        test = scoring.evaluate_model(predictor, scoring.labelled_batches(self.store_folder, "test", predictor),
                                      self.run_folder)
        return self.report.write_metrics(self.history, test)

    def restore(self, run):
        """Continue from the run folder's last checkpoint (weights, optimiser, epochs, history); False: none."""
        if not self.checkpoints.restore(run, self.store_folder, self.channels):
            return False
        self.history = read_history(run, int(self.epoch))
        return True


def validate(eval_step, store_folder, tasks, age_edges):
    """Per task on the valid split: the mean loss, and the accuracy (exact age: MAE and CS(5))."""
    parts = [eval_step(images, labels) + (labels,) for images, labels in pipeline.split_dataset(store_folder, "valid", 256)]
    metrics = {}
    for task in tasks:
        loss = float(np.mean(np.concatenate([face_losses[task].numpy() for face_losses, _, _ in parts])))
        predicted = np.concatenate([predictions[task].numpy() for _, predictions, _ in parts])
        truth = np.concatenate([labels[TASK_LABEL[task]].numpy() for _, _, labels in parts])
        if task == "exact_age":
            figures = evaluate.age_estimation_metrics(truth, predicted, age_edges)
            metrics[task] = {"loss": loss, "mae": figures["mae"], "cs5": figures["cs5"]}
        else:
            metrics[task] = {"loss": loss, "accuracy": float(np.mean(truth == predicted))}
    return metrics


def make_optimizer(config, steps_per_epoch):
    """Adam or SGD with momentum, on the learning-rate schedule config names."""
    if config.schedule == "cosine":
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 10, max(1, config.max_epochs - 1) * steps_per_epoch,
            warmup_target=config.learning_rate, warmup_steps=steps_per_epoch)
    else:
        schedule = tf.keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, steps_per_epoch, config.learning_rate_decay, staircase=True)
    if config.optimizer == "sgd":
        return tf.keras.optimizers.SGD(schedule, momentum=config.momentum)
    return tf.keras.optimizers.Adam(schedule)


def steps_per_epoch(manifest, store_folder, global_batch):
    """Full steps an epoch of the store's train split makes; TrainError if the store cannot train a run (no
    full batch, or no faces to validate or test on). Checked before the run folder is touched."""
    faces = manifest["splits"]["train"]["faces"]
    if faces < global_batch:
        raise TrainError(f"{store_folder}: {faces} training faces, fewer than one batch of {global_batch}; "
                         "use a smaller --batch-size")
    if manifest["splits"]["valid"]["faces"] == 0:
        raise TrainError(f"{store_folder}: the valid split is empty; early stopping needs it")
    if manifest["splits"]["test"]["faces"] == 0:
        raise TrainError(f"{store_folder}: the test split is empty; a run's final figures are measured on it: wash "
                         "the store again with a --split that gives the test split more faces (such as 85,5,10)")
    return faces // global_batch


def model_description(config, manifest, tasks, class_names, channels):
    """What a saved model's model.json says of it beside its network (model.save_model's part)."""
    return {"tasks": list(tasks), "classes": {task: class_names[task] for task in tasks},
            "age_edges": manifest["age_edges"], "gender_coding": "0 = male, 1 = female",
            "preprocessing": f"{COLOURS[channels]} 128x128 uint8 face, framed as a UTKFace chip "
                             "(faces.chip_box), standardised per image inside the model",
            "trained_on": data_description(manifest), "train_config": asdict(config)}


def data_description(manifest):
    """What identifies the training data without naming this machine's folders: the datasets, their
    records, and the faces of each split."""
    return {"sources": [{"dataset": source["dataset"], "records": source["records"]} for source in manifest["sources"]],
            "faces": {split: counts["faces"] for split, counts in manifest["splits"].items()}}


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
