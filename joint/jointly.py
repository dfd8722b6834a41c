"""Train gender and age together: one trunk, two heads, learned task balance.

    python joint/jointly.py --data data/utk --run runs/joint
    python joint/jointly.py --data data/utk --run runs/joint --resume   # after Ctrl-C
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from agegender import train_cli  # noqa: E402

if __name__ == "__main__":
    train_cli.main(tasks=('gender', 'age'), description=__doc__)
