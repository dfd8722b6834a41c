"""A store many times larger than a real one (its train shards listed over and over), and the peak memory
of streaming a training epoch of it: for the memory test and bench/memory_scale.py."""
import copy
import json
import os
import subprocess
import sys

from agegender import atomic, store

# Runs in a fresh process: one epoch of the train split, batches of 128, as training reads it.
STREAM_EPOCH = """
import json, resource
from agegender import pipeline
faces = 0
for images, labels in pipeline.split_dataset({store!r}, "train", 128, training=True, augment=True,
                                             shuffle_buffer={buffer}):
    faces += int(images.shape[0])
print(json.dumps({{"faces": faces, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def repeat_store(source, target, times):
    """A store at `target` whose train split is `source`'s train shards `times` over (symbolic links)."""
    manifest = store.read_manifest(source)
    repeated = copy.deepcopy(manifest)
    shards = []
    for split in store.SPLITS:
        os.makedirs(os.path.join(target, split), exist_ok=True)
    store.link_held_out_splits(source, target)
    for copy_number in range(times):
        for shard in manifest["splits"]["train"]["shards"]:
            names = {}
            for kind in ("images", "labels"):
                names[kind] = f"{kind}-{len(shards):05d}.npy"
                os.symlink(os.path.abspath(os.path.join(source, "train", shard[kind])),
                           os.path.join(target, "train", names[kind]))
            shards.append({**names, "faces": shard["faces"]})
    repeated["splits"]["train"] = {**manifest["splits"]["train"], "shards": shards,
                                   "faces": manifest["splits"]["train"]["faces"] * times}
    atomic.write_json(os.path.join(target, store.MANIFEST), repeated)
    return target


def stream_epoch_peak(data, shuffle_buffer):
    """(faces streamed, peak MB) of one training epoch of `data`'s train split, in a fresh process."""
    snippet = STREAM_EPOCH.format(store=os.path.abspath(data), buffer=shuffle_buffer)
    output = subprocess.run([sys.executable, "-c", snippet], check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return figures["faces"], figures["peak_mb"]
