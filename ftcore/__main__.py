"""`python -m ftcore`: the command line (see `ftcore._app.cli`)."""

from ftcore._app.cli import main

raise SystemExit(main())
