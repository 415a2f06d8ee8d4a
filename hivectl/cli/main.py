"""Entry point: global options, command-name prefixes (as in vm-bhyve), errors and exit statuses.

Exit status: 0 success, 1 failure, 2 usage error. Errors are one line on stderr, prefixed ``hivectl:``.
"""

from __future__ import annotations

import os
import sys

from hivectl import __version__
from hivectl.cli import quickargs
from hivectl.cli.registry import COMMANDS, Command
from hivectl.errors import HivectlError, UsageError
from hivectl.safety.text import argv_words

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from hivectl.cli.context import Context

PROG = "hivectl"

OVERVIEW = """\
usage: hivectl [--driver bhyve|qemu] [-H REMOTE] COMMAND [options] [arguments]
       hivectl help [COMMAND | keys]
       hivectl COMMAND --help

Manage bhyve virtual machines; a drop-in successor of vm-bhyve that reads and writes its vm_dir.
On Linux the same commands drive QEMU. Command names may be shortened to any unique prefix.

global options:
  --driver bhyve|qemu   hypervisor driver (default: bhyve on FreeBSD, qemu on Linux; or HIVECTL_DRIVER)
  -H REMOTE             run the command on a remote host (hivectl remote add; or REMOTE:guest)
  --version             print the version and exit
  -h, --help            show this overview

environment:
  HIVECTL_VM_DIR        use this vm_dir instead of the one in rc.conf / /etc/hivectl.conf
  HIVECTL_RC_CONF       read vm_dir, vm_list, vm_delay and vm_disable_host_checks from these files
                        (FILE[:FILE...], later ones win) instead of /etc/rc.conf, rc.conf.local,
                        rc.conf.d/vm (FreeBSD) or /etc/hivectl.conf (Linux)
  EDITOR                editor for 'configure' (default vi)
  HIVECTL_ZYGOTE_SOCKET the start-up server's socket (default /var/run/hivectl/zygote.sock; 'off':
                        never use it). 'hivectl zygote [--socket PATH] [--group NAME]' runs that server:
                        hivectl imported once, each command a forked child (see 'hivectl zygote --help')

exit status: 0 success, 1 failure, 2 usage error.
"""


def overview() -> str:
    groups: dict[str, list[Command]] = {}
    for command in COMMANDS:
        groups.setdefault(command.group, []).append(command)
    lines = [OVERVIEW, "commands:"]
    for group, commands in groups.items():
        lines.append(f"  {group}:")
        lines.extend(f"    {c.name:<12}{c.summary}" for c in commands)
    return "\n".join(lines) + "\n"


def keys_help() -> str:
    """``hivectl help keys``: every guest configuration key, its default and meaning (from the key table)."""
    from hivectl.model.keys import KEYS

    lines = ["Guest configuration keys (NAME/NAME.conf, templates). N is 0, 1, 2, ...; * = added by hivectl.", ""]
    for spec in KEYS:
        default = f" [default: {spec.default}]" if spec.default else ""
        mark = "*" if spec.hivectl else " "
        lines.append(f"  {spec.pattern:<22}{mark} {spec.meaning}{default}")
    return "\n".join(lines) + "\n"


def resolve(word: str) -> Command:
    """Exact name, else the single command the word is a prefix of (``li`` → ``list``)."""
    for command in COMMANDS:
        if command.name == word:
            return command
    matches = [c for c in COMMANDS if c.name.startswith(word.lower())] if word else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"ambiguous command {word!r}: could be {', '.join(c.name for c in matches)}")
    raise UsageError(f"unknown command {word!r} (see 'hivectl help')")


def build_parser(command: Command) -> tuple[argparse.ArgumentParser, Callable[..., int]]:
    """The argument parser of one command only (building all 36 would cost more than ``list`` itself)."""
    import argparse  # here: a plain command line is read by hivectl/cli/quickargs.py without it

    class _Parser(argparse.ArgumentParser):
        """argparse that reports usage errors as ``UsageError`` (exit 2) in our one-line style."""

        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")

    configure, run = command.handlers()
    parser = _Parser(prog=f"{PROG} {command.name}", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description=command.summary)
    configure(parser)
    return parser, run


def parse_command(command: Command, args: list[str]) -> tuple[object, Callable[..., int]]:
    """The command's parsed arguments and its ``run_`` function: quickargs when it can, else argparse."""
    configure, run = command.handlers()
    recorder = quickargs.record(configure)  # type: ignore[arg-type]
    namespace = quickargs.parse(recorder, args) if recorder is not None else None
    if namespace is not None:
        return namespace, run
    parser, run = build_parser(command)
    if getattr(parser, "intermixed", False):  # options between positionals: snapshot prune --dry-run web db
        return parser.parse_intermixed_args(args), run
    return parser.parse_args(args), run


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    driver: str | None = None
    remote: str | None = None  # -H NAME: the command runs there (hivectl/cli/cmd_remote.py)
    try:
        argv_words(args)  # NUL, line breaks, non-UTF-8: refused before anything reads them
        while args and args[0].startswith("-"):
            option = args.pop(0)
            if option in ("-h", "--help"):
                sys.stdout.write(overview())
                return 0
            if option == "--version":
                sys.stdout.write(f"hivectl {__version__}\n")
                return 0
            if option == "--driver" and args:
                driver = args.pop(0)
            elif option.startswith("--driver="):
                driver = option.split("=", 1)[1]
            elif option == "-H" and args:
                remote = args.pop(0)
            else:
                raise UsageError(f"unknown global option {option!r} (see 'hivectl --help')")
        if driver is not None and driver not in ("bhyve", "qemu"):
            raise UsageError(f"--driver {driver!r}: expected bhyve or qemu")
        if not args:
            sys.stderr.write(overview())
            return 2
        word = args.pop(0)
        if word in ("_serve", "_stream") and remote is None:  # the remote end of -H and Remote (hidden)
            from hivectl.cli import serve

            return serve.main(word, args)
        if word == "zygote" and remote is None:  # the start-up server (docs/architecture.md, "The zygote")
            from hivectl.cli.zygote import server

            return server.main(args)
        if args[:1] == ["-H"] and len(args) > 1:  # hivectl list -H NAME: as before the command
            remote = args[1]
            del args[:2]
        if word == "help":
            if not args:
                sys.stdout.write(overview())
                return 0
            if args[0] == "keys":
                sys.stdout.write(keys_help())
                return 0
            parser, _ = build_parser(resolve(args[0]))
            parser.print_help()
            return 0
        command = resolve(word)
        namespace, run = parse_command(command, args)
        if remote is not None or any(":" in a for a in args):
            from hivectl.cli import cmd_remote

            named, targets = cmd_remote.remote_of_targets(command.name, namespace)
            if remote is not None and named is not None and named != remote:
                raise UsageError(f"-H {remote} and {named}: name one remote")
            remote = remote or named
            if remote is not None:
                return cmd_remote.forward(driver, remote, command.name, args, targets)
        from hivectl.cli.context import Context

        ctx = Context(driver)
        if os.getuid() == 0 and ("SUDO_UID" in os.environ or "DOAS_USER" in os.environ):
            _check_delegation(ctx, command, namespace)
        if getattr(namespace, "dry_run", None) is False:  # it changes something: through the audit seam
            from hivectl.cli.cmd_journal import audited

            return audited(ctx, command, namespace, run)
        return run(ctx, namespace) or 0
    except HivectlError as error:
        sys.stderr.write(f"{PROG}: {error}\n")
        return error.exit_status
    except KeyboardInterrupt:
        # 1, not the shell's 130: the exit status contract is 0, 1 or 2 (the interrupted command failed).
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 1
    except BrokenPipeError:
        return 1
    except OSError as error:
        # A file the command needed could not be read or written (missing, not a directory, disk full,
        # permission): one line naming the file, not a traceback.
        sys.stderr.write(f"{PROG}: {_os_error(error)}\n")
        return 1


def _check_delegation(ctx: Context, command: Command, namespace: object) -> None:
    """Run as root by sudo or doas: hold the command to the invoking user's grants (docs/security.md).

    A refusal is one audit line (result ``refused``, hivectl/journal/audit.py) before it is reported, as
    the daemon's 403s are: a tenant's user probing what sudo lets through is exactly what the log is for.
    """
    from hivectl.auth import invoker
    from hivectl.auth.errors import Forbidden
    from hivectl.cli.delegation import needs

    wanted = needs(command.name, namespace)
    who = None
    try:
        who = invoker.delegated()
        if who is not None:
            invoker.check(ctx.store.root, who, wanted, ctx.store)
    except Forbidden as error:
        _record_refusal(ctx, command, namespace, wanted, who, str(error))
        raise


def _record_refusal(ctx: Context, command: Command, namespace: object, wanted: list[tuple[str, str]],
                    invoking: object, message: str) -> None:
    """The audit line of a delegated command refused: the operation as an ``ok`` line of the same command
    would name it, the paths the check was made on, and who (root, with ``invoker`` the sudo/doas user
    whose grants were checked, when that user could be told)."""
    from hivectl.cli.cmd_journal import operation_name
    from hivectl.cli.delegation import operation_of
    from hivectl.journal import audit
    from hivectl.journal.who import current, describe

    operation = operation_name(command, namespace) or operation_of(command.name, namespace)
    arguments = {k: v for k, v in vars(namespace).items() if k not in ("dry_run", "action", "forward_action")}
    who = current()
    if invoking is not None:
        who["invoker"] = describe(invoking)
    targets = list(dict.fromkeys(path for _, path in wanted))
    try:
        config_dir = str(ctx.store.config_dir)
    except (HivectlError, OSError):  # no vm_dir to speak of: no log to write to
        return
    if audit.refused(config_dir, operation, arguments, message, who, targets=targets) is None and \
            os.path.isdir(config_dir):
        sys.stderr.write(f"{PROG}: audit log not written: {config_dir}\n")


def _os_error(error: OSError) -> str:
    """``PATH: reason`` (``PATH -> OTHER: reason`` for a rename) as the C library says it."""
    from hivectl.errors import os_error_line

    return os_error_line(error)
