"""Make a 640x480 video of real UTKFace faces drifting over a background, for tests and benchmarks.

    python bench/face_video.py --out faces.mp4 --frames 300
"""
import argparse
import os

from video_of_faces import make_face_video  # (the tests make their video with it too)

SHARED_UTKFACE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "shared", "data", "utkface")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder to take faces from")
    arguments = parser.parse_args()
    names = sorted(os.listdir(arguments.faces))[::997][:10]
    make_face_video(arguments.out, [os.path.join(arguments.faces, name) for name in names], arguments.frames)
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
