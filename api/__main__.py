"""``python -m api``: run the API server."""

from agcluster.cli import main

if __name__ == "__main__":
    main(["api"])
