"""`python -m tidegate` is the same as the `tidegate` command."""

from tidegate.cli import main

raise SystemExit(main())
