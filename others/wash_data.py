"""Turn a raw face dataset into the project's clean store:
the course's path to agegender/wash_cli.py (installed as agegender-wash; --help explains)."""
from agegender import wash_cli

if __name__ == "__main__":
    wash_cli.main()
