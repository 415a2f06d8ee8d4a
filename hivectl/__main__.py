"""Allow ``python -m hivectl``."""

from hivectl.cli.main import main

raise SystemExit(main())
