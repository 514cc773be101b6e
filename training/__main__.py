"""``python -m training``: the operator CLI (see :mod:`training.cli`)."""

from training.cli import main

raise SystemExit(main())
