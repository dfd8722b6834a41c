"""The command line the three training scripts share (joint/jointly.py, gender/gender.py, age/age.py;
installed as agegender-train, agegender-train-gender, agegender-train-age): their options, a new run's
folder or a resumed one's saved options, and the run itself, ending on a user's error in one line."""
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, fields

from agegender import atomic, cli, store
from agegender.errors import AgeGenderError, tensorflow_message
from agegender.train_options import STRATEGIES, TrainConfig, TrainError

JOINT, GENDER, AGE_GROUP = ("gender", "age_group"), ("gender",), ("age_group",)
RUN_FORMAT = "agegender-run"  # config.json's signature: --force deletes only a folder that has it
# What a run folder holds (train.py's docstring), and nothing else (see atomic.strangers).
RUN_LAYOUT = {"config.json": atomic.FILE, "checkpoints": atomic.FOLDER, "model": atomic.FOLDER, "logs": atomic.FOLDER,
              "metrics.json": atomic.FILE, "curves.png": atomic.FILE, "confusion_*.png": atomic.FILE}
SCRIPTS = {JOINT: "joint/jointly.py", GENDER: "gender/gender.py", AGE_GROUP: "age/age.py"}  # by the tasks they train
DESCRIPTIONS = {  # each command's --help, by the tasks it trains
    JOINT: """Train gender and age together: one trunk, two heads, learned task balance.

    python joint/jointly.py --data data/utk --run runs/joint
    python joint/jointly.py --data data/utk --run runs/joint --resume   # after Ctrl-C
    python joint/jointly.py @joint/recipes/improved.txt --data data/utk --run runs/improved --seed 1
""",
    GENDER: """Train the gender classifier alone (the original CNN with one head).

    python gender/gender.py --data data/utk --run runs/gender
    python gender/gender.py --data data/utk --run runs/gender --resume   # after Ctrl-C
""",
    AGE_GROUP: """Train the age-group classifier alone (the original CNN with one head).

    python age/age.py --data data/utk --run runs/age
    python age/age.py --data data/utk --run runs/age --resume   # after Ctrl-C
""",
}


def parse_arguments(tasks):
    """The command line's arguments, with `given` (the TrainConfig fields it sets), and the TrainConfig
    to train `tasks` with: the options given, the others TrainConfig's defaults."""
    # @FILE: options from a file, as the bundled recipes are kept (joint/recipes/).
    parser = cli.ArgumentParser(description=DESCRIPTIONS[tasks], fromfile_prefix_chars="@")
    parser.add_argument("--data", required=True, help="store written by others/wash_data.py")
    parser.add_argument("--run", required=True, help="run folder for checkpoints, model, metrics, plots, logs")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run from its last finished epoch (its saved options win)")
    parser.add_argument("--force", action="store_true", help="delete --run and start again")
    options = cli.add_options(parser, TrainConfig)
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="tf.distribute strategy: one device, mirrored over the local GPUs, or multiworker "
                             "from TF_CONFIG; auto picks multiworker with TF_CONFIG, mirrored with several "
                             "GPUs, else one (default auto). --batch-size is per replica")
    parser.add_argument("--quiet", action="store_true", help="no progress line, only a line per epoch")
    arguments = parser.parse_args()
    given = {field.name: getattr(arguments, field.name) for field in options if hasattr(arguments, field.name)}
    arguments.given = set(given)
    try:
        config = TrainConfig(tasks=tasks, **given)
    except TrainError as error:  # a rule between options (TrainConfig's, the library's too)
        parser.error(str(error))
    return arguments, config


def run_problem(folder):
    """Why `folder` is not a run folder this program started (so --force must not delete it), or None."""
    return atomic.folder_problem(folder, "a run folder", "config.json", RUN_LAYOUT, RUN_FORMAT)


def saved_config(run, tasks, max_epochs=None):
    """(the options a run folder's config.json holds, the whole of it), or (None, None); TrainError if
    the run trains other tasks."""
    config_path = os.path.join(run, "config.json")
    if not os.path.isfile(config_path):
        return None, None
    try:
        with open(config_path, encoding="utf-8") as file:
            saved = json.load(file)
        saved["tasks"] = tuple(saved["tasks"])
        if not saved.get("teacher"):  # written before teacher_share was None without a teacher
            saved.pop("teacher_share", None)
        # Options a run saved before they existed keep their defaults.
        config = TrainConfig(**{field.name: saved[field.name] for field in fields(TrainConfig)
                                      if field.name in saved})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainError(f"{config_path}: unreadable run options ({error}); "
                               "start the run again with --force") from None
    if config.tasks != tuple(tasks):
        script = SCRIPTS.get(config.tasks)
        advice = (f"resume it with {script}" if script else
                  "an older version started it (its tasks were renamed since); start it again with --force")
        raise TrainError(f"{run}: this run trains {', '.join(config.tasks)}; {advice}")
    if max_epochs is not None:
        config.max_epochs = max_epochs
    return config, saved


def resume_differences(saved, trained_on, config, given, data):
    """The options given with --resume that disagree with the run's own (more epochs may be given)."""
    differences = []
    for field in fields(TrainConfig):
        new, old = getattr(config, field.name), getattr(saved, field.name)
        if field.name != "max_epochs" and field.name in given and new != old:
            differences.append(f"{cli.option_flag(field)} {new} (the run's: {old})")
    if trained_on and os.path.abspath(data) != trained_on:
        differences.append(f"--data {data} (the run's: {trained_on})")
    return differences


def resumed_config(arguments, tasks):
    """With --resume, the run's own options (and --epochs where given) and its whole config.json; else
    (None, None)."""
    if not arguments.resume:
        return None, None
    return saved_config(arguments.run, tasks, getattr(arguments, "max_epochs", None))


def saved_age_edges(run):
    """The age edges of the model a run folder has saved (its best epoch's), or None before it has one."""
    try:
        with open(os.path.join(run, "model", "model.json"), encoding="utf-8") as file:
            return json.load(file)["age_edges"]
    except (OSError, ValueError, KeyError, TypeError):  # no model yet, or one that cannot say
        return None


def prepare_run(arguments, config):
    """The config to train with: the saved one on --resume, else the new one once the folder is free.
    Only checks: nothing is written before start_run, so a refused command leaves the folder as it was."""
    run = arguments.run
    if os.path.lexists(run) and not os.path.isdir(run):
        raise TrainError(f"{run}: is a file, not a run folder; choose another --run")
    resumed, saved = resumed_config(arguments, config.tasks)
    if resumed:
        differences = resume_differences(resumed, saved.get("data"), config, arguments.given, arguments.data)
        if differences:
            raise TrainError(f"{run}: --resume continues with the run's own options, and these differ: "
                             f"{'; '.join(differences)}; leave them out, or start a new run (another --run)")
        # The same path may hold another store since (washed again from other faces, or other age groups).
        # Runs started before stores had an identity have none to compare; their model's age groups (the
        # one part of the network the store shapes) are compared instead.
        manifest = store.read_manifest(arguments.data)
        if "data_identity" in saved and saved["data_identity"] != manifest.get("identity"):
            raise TrainError(f"{arguments.data}: not the store the run {run} started on (its faces or labels "
                             "differ: washed again since?); resume with that store, or start a new run (another --run)")
        trained_edges = saved_age_edges(run)
        if trained_edges not in (None, manifest["age_edges"]):
            raise TrainError(f"{arguments.data}: its age groups end at {manifest['age_edges']}, but the run {run} "
                             f"trained on groups ending at {trained_edges} (the store washed again since?); resume "
                             "with the store the run started on, or start a new run (another --run)")
        return resumed
    if os.path.exists(run) and os.listdir(run):
        problem = run_problem(run)
        if problem and (arguments.force or not os.path.isfile(os.path.join(run, "config.json"))):
            raise TrainError(f"{run}: {problem}, so it is not deleted; choose another --run, or move this "
                             "one away yourself")
        if not arguments.force:
            raise TrainError(f"{run}: run folder exists; add --resume to continue it or --force to start again")
    return config


def start_run(arguments, config):
    """A new run's folder, emptied with --force, holding its options and the channels of its store's
    faces; a resumed run's is kept."""
    run = arguments.run
    if arguments.resume and os.path.isfile(os.path.join(run, "config.json")):
        return
    if os.path.exists(run) and arguments.force:
        shutil.rmtree(run)  # prepare_run made sure it is a run folder and nothing else
    os.makedirs(run, exist_ok=True)
    manifest = store.read_manifest(arguments.data)
    atomic.write_json(os.path.join(run, "config.json"),
                      {"format": RUN_FORMAT, **asdict(config), "data": os.path.abspath(arguments.data),
                       "data_identity": manifest.get("identity"), "channels": store.face_channels(manifest)})


def main(tasks=JOINT):
    """Train `tasks` as the command line says: joint/jointly.py and agegender-train train both."""
    try:
        arguments, config = parse_arguments(tasks)
        # Imported once the options are known to be good: TensorFlow's import alone takes seconds.
        from agegender import distribute, evaluate, train
        from agegender.checkpoints import checkpointed_epochs, remove_unfinished_checkpoint
        from agegender.quiet_tensorflow import tf
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: nothing was written\n")
        sys.exit(130)
    try:
        strategy = distribute.make_strategy(arguments.strategy)
        if distribute.is_chief(strategy):
            run = arguments.run
            config = prepare_run(arguments, config)
        else:
            # A non-chief worker writes what it must (saving is collective) to a folder of its own; on
            # --resume it reads the chief's run, which must then be on a shared file system.
            run = tempfile.mkdtemp(prefix="agegender-worker-")
            resumed, _ = resumed_config(arguments, config.tasks)
            config = resumed or config
        # Built before the run folder is touched: it refuses a store that does not fit the options.
        trainer = train.Trainer(arguments.data, run, config, strategy)
        if trainer.chief:
            start_run(arguments, config)
        if strategy.num_replicas_in_sync > 1 and trainer.chief:
            kind = ("MultiWorkerMirroredStrategy" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                    else type(strategy).__name__)
            print(f"{kind}: {strategy.num_replicas_in_sync} replicas x {config.batch_size} "
                  f"faces = {trainer.global_batch} a step", flush=True)
        if arguments.resume:
            remove_unfinished_checkpoint(arguments.run)  # a save killed midway
            if trainer.restore(arguments.run):
                print(f"resuming {arguments.run} after epoch {int(trainer.epoch)}", flush=True)
            else:
                print(f"{arguments.run}: no checkpoint to resume; starting at epoch 1", flush=True)
        with cli.CtrlC() as ctrl_c:
            metrics = trainer.fit(quiet=arguments.quiet, after_each_step=ctrl_c.check)
    except (atomic.WriteError, tf.errors.OpError) as error:  # writing the run failed: a full disk, say
        remove_unfinished_checkpoint(arguments.run)
        problem = error if isinstance(error, atomic.WriteError) else f"{arguments.run}: {tensorflow_message(error)}"
        sys.exit(f"error: {problem}; {checkpointed_epochs(arguments.run)} finished epoch(s) are saved: once "
                 "that is fixed, run the same command with --resume")
    except AgeGenderError as error:
        sys.exit(f"error: {error}")
    except OSError as error:  # a --run the system refuses: a read-only place, say
        sys.exit(f"error: {error.filename}: {error.strerror}" if error.filename else f"error: {error}")
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: {checkpointed_epochs(arguments.run)} finished epoch(s) are saved in "
                         f"{arguments.run}; run the same command with --resume to continue\n")
        sys.exit(130)
    if not trainer.chief:
        shutil.rmtree(trainer.run_folder, ignore_errors=True)
        return
    print(f"best epoch {metrics['best_epoch']}; test split:")
    for task, figures in metrics["test"].items():
        print(f"  {task}: {evaluate.headline(task, figures)}")
    print(f"model in {os.path.join(arguments.run, 'model')}; curves and confusion matrices in {arguments.run}")


def main_gender():
    main(GENDER)


def main_age():
    main(AGE_GROUP)
