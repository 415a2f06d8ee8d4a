"""The command line's context: ``hivectl.context.Context`` plus printing a plan for ``--dry-run``."""

from __future__ import annotations

import sys

from hivectl.context import Context as _Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:  # read-only commands such as ``list`` never import the plan machinery
    from hivectl.plan import Plan


class Context(_Context):
    """Settings, host and store for one invocation; also where plans are applied or printed."""

    def execute(self, plan: Plan, dry_run: bool) -> None:
        """Print the plan (``--dry-run``) or apply it."""
        if dry_run:
            for line in plan.lines():
                sys.stdout.write(line + "\n")
            return
        plan.apply(self.host)
