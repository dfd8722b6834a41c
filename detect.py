"""Find the faces in images and label each with gender and age group:
the course's path to agegender/detect_cli.py (installed as agegender-detect; --help explains)."""
from agegender import detect_cli

if __name__ == "__main__":
    detect_cli.main()
