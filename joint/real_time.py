"""Live age & gender on a webcam or a video file:
the course's path to agegender/realtime_cli.py (installed as agegender-realtime; --help explains)."""
from agegender import realtime_cli

if __name__ == "__main__":
    realtime_cli.main()
