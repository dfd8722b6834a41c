"""Evaluate a trained model on labelled faces, or classify the faces in one image:
the course's path to agegender/evaluate_cli.py (installed as agegender-test; --help explains)."""
import sys

try:
    from agegender import evaluate_cli
except ModuleNotFoundError as missing:  # a clone's script run before installing the package
    print(f"error: {missing}: install the package first: `pip install -e .` in the repository root", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    evaluate_cli.main()
