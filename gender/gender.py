"""Train the gender classifier alone:
the course's path to agegender/train_cli.py (installed as agegender-train-gender; --help explains)."""
import sys

try:
    from agegender import train_cli
except ModuleNotFoundError as missing:  # a clone's script run before installing the package
    print(f"error: {missing}: install the package first: `pip install -e .` in the repository root", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    train_cli.main_gender()
