"""Train gender and age together:
the course's path to agegender/train_cli.py (installed as agegender-train; --help explains)."""
from agegender import train_cli

if __name__ == "__main__":
    train_cli.main()
