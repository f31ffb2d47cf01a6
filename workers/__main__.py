"""``python -m workers``: run one worker."""

from agcluster.cli import main

if __name__ == "__main__":
    main(["worker"])
