"""Entry point: ``python -m runner``."""

from runner.main import main

raise SystemExit(main())
