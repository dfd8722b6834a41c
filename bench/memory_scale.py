"""Peak memory of a training epoch's data stream as the store grows: is it flat?

    python bench/memory_scale.py --data data/utk --times 10

Makes a store `times` as large as --data by listing its train shards `times` over (symbolic links: no
disk is used, the faces repeat), then streams one training epoch of each store through the training
pipeline (shuffle, batches, augmentation) in a fresh process and reports its peak resident memory.
A pipeline that held the split in memory would need `times` as much; a streaming one needs the same.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from agegender import atomic, store  # noqa: E402

# Runs in a fresh process: one epoch of the train split, batches of 128, as training reads it.
STREAM_EPOCH = """
import json, resource, sys
sys.path.insert(0, {root!r})
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
    for split in ("valid", "test"):
        for shard in manifest["splits"][split]["shards"]:
            for kind in ("images", "labels"):
                os.symlink(os.path.abspath(os.path.join(source, split, shard[kind])),
                           os.path.join(target, split, shard[kind]))
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
    snippet = STREAM_EPOCH.format(root=ROOT, store=os.path.abspath(data), buffer=shuffle_buffer)
    output = subprocess.run([sys.executable, "-c", snippet], check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return figures["faces"], figures["peak_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "utk"), help="store (default data/utk)")
    parser.add_argument("--times", type=int, default=10, help="how many times larger the second store is")
    parser.add_argument("--shuffle-buffer", type=int, default=8192, help="faces (the training default)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        large = repeat_store(arguments.data, os.path.join(work, "large"), arguments.times)
        print("| train split | faces streamed | peak memory |")
        print("| --- | --- | --- |")
        for name, data in ((arguments.data, arguments.data), (f"{arguments.times}x {arguments.data}", large)):
            faces, peak = stream_epoch_peak(data, arguments.shuffle_buffer)
            print(f"| {name} | {faces:,} | {peak:,.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
