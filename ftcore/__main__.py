"""`python -m ftcore`: the command line (see `ftcore._cli`)."""

from ftcore._cli import main

raise SystemExit(main())
