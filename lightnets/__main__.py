"""`python -m lightnets` runs the command-line interface."""

from lightnets.cli import main

raise SystemExit(main())
