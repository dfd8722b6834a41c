"""Turn a raw face dataset into the project's clean store:
the course's path to agegender/wash_cli.py (installed as agegender-wash; --help explains)."""
import sys

try:
    from agegender import wash_cli
except ModuleNotFoundError as missing:  # a clone's script run before installing the package
    print(f"error: {missing}: install the package first: `pip install -e .` in the repository root", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    wash_cli.main()
