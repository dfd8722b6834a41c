"""Live age & gender on a webcam or a video file: boxes, labels, confidence and FPS on every frame:
joint/real_time.py, installed as agegender-realtime.

    python joint/real_time.py                          # webcam 0, in a window (q or Esc quits)
    python joint/real_time.py --source video.mp4 --out annotated.mp4 --no-display
"""
import argparse
import json
import sys

from agegender import BUNDLED_MODEL, ENGINES, REALTIME_ENGINE, cli
from agegender.faces import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS

# Detecting on frames shrunk to this side costs a third of full 640x480 and finds the same faces
# (measured on faces from UTKFace placed in 640x480 frames: 56 of 60 either way).
DETECTION_MAX_SIDE = 320


def label_video():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="0", help="camera index or video file (default: camera 0)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    parser.add_argument("--engine", choices=ENGINES, default=REALTIME_ENGINE,
                        help=f"convert the model to TFLite when starting (1-2 s), which classifies a face about 3x "
                             f"faster on a CPU with the same answers, or run it with TensorFlow (default: "
                             f"{REALTIME_ENGINE}; bench/benchmark.py measures both)")
    parser.add_argument("--out", type=cli.output_file, help="write the annotated video here (.mp4)")
    parser.add_argument("--no-display", action="store_true",
                        help="no window (also automatic when no display is available)")
    parser.add_argument("--max-frames", type=cli.positive_int, help="stop after this many frames")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    arguments = parser.parse_args()
    # Imported once the options are known to be good: TensorFlow's import alone takes seconds.
    from agegender import video
    from agegender.predict import ONE_VIEW, Predictor
    display = not arguments.no_display and video.display_available()
    if not arguments.no_display and not display:
        print("no display available: running headless (see --out to keep the annotated video)", file=sys.stderr)
    predictor = Predictor(arguments.model, arguments.detector, detector_max_side=DETECTION_MAX_SIDE,
                          engine=arguments.engine, **ONE_VIEW)
    summary = video.run(predictor, arguments.source, out=arguments.out, display=display,
                        max_frames=arguments.max_frames)
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['frames']} frames, {summary['faces']} faces, {summary['mean_fps']:.1f} FPS "
              f"(reading {summary['read_ms_per_frame']:.1f} ms, detection {summary['detect_ms_per_frame']:.1f} ms, "
              f"classification "
              f"{summary['classify_ms_per_frame']:.1f} ms per frame)" +
              (f"; annotated video in {summary['output']}" if summary["output"] else ""))


def main():
    cli.run(label_video)
