"""Export a model as a TensorFlow SavedModel and TFLite files:
the course's path to agegender/export_cli.py (installed as agegender-export; --help explains)."""
import sys

try:
    from agegender import export_cli
except ModuleNotFoundError as missing:  # a clone's script run before installing the package
    print(f"error: {missing}: install the package first: `pip install -e .` in the repository root", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    export_cli.main()
