"""``python -m plastax``: the command line (see :mod:`plastax.cli`)."""

from .cli import main

raise SystemExit(main())
