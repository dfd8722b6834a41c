"""Live age & gender on a webcam or a video file:
the course's path to agegender/realtime_cli.py (installed as agegender-realtime; --help explains)."""
import sys

try:
    from agegender import realtime_cli
except ModuleNotFoundError as missing:  # a clone's script run before installing the package
    print(f"error: {missing}: install the package first: `pip install -e .` in the repository root", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    realtime_cli.main()
