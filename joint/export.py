"""Export a model as a TensorFlow SavedModel and TFLite files:
the course's path to agegender/export_cli.py (installed as agegender-export; --help explains)."""
from agegender import export_cli

if __name__ == "__main__":
    export_cli.main()
