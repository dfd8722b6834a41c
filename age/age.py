"""Train the age-group classifier alone (the original CNN with one head).

    python age/age.py --data data/utk --run runs/age
    python age/age.py --data data/utk --run runs/age --resume   # after Ctrl-C
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from agegender import train_cli  # noqa: E402

if __name__ == "__main__":
    train_cli.main(tasks=('age',), description=__doc__)
