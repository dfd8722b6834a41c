"""Evaluate a trained model on labelled faces, or classify the faces in one image:
the course's path to agegender/evaluate_cli.py (installed as agegender-test; --help explains)."""
from agegender import evaluate_cli

if __name__ == "__main__":
    evaluate_cli.main()
