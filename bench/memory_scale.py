"""Peak memory of a training epoch's data stream as the store grows: is it flat?

    python bench/memory_scale.py --data data/utk --times 10

Makes a store `times` as large as --data by listing its train shards `times` over (symbolic links: no
disk is used, the faces repeat), then streams one training epoch of each store through the training
pipeline (shuffle, batches, augmentation) in a fresh process and reports its peak resident memory.
A pipeline that held the split in memory would need `times` as much; a streaming one needs the same.
"""
import argparse
import os
import tempfile

from scaled_store import repeat_store, stream_epoch_peak  # (the memory test uses them too)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
