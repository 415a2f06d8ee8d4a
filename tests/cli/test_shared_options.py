"""``remote`` and ``replicate`` declare their value options and --json/--dry-run through
hivectl/cli/options.py: both parsers (quickargs' fast path and argparse) still read them alike."""

from __future__ import annotations

from hivectl.cli.main import build_parser, parse_command, resolve


def test_remote_and_replicate_read_their_shared_option_blocks() -> None:
    remote = ["add", "dr", "ssh://root@dr", "--identity", "/k", "--known-hosts", "/kh", "--command", "/hv",
              "--dry-run"]
    replicate = ["web", "dr", "--every", "15m", "--keep", "keep-last=4", "--now", "5", "--json"]
    for command, argv in (("remote", remote), ("replicate", replicate)):
        quick, _ = parse_command(resolve(command), argv)
        parser, _ = build_parser(resolve(command))
        full = parser.parse_args(argv)
        assert vars(quick) == vars(full), command
    quick, _ = parse_command(resolve("remote"), remote)
    assert (quick.identity, quick.known_hosts, quick.command, quick.dry_run, quick.json) == \
        ("/k", "/kh", "/hv", True, False)
    quick, _ = parse_command(resolve("replicate"), replicate)
    assert (quick.every, quick.keep, quick.now, quick.json, quick.dry_run, quick.run_due) == \
        ("15m", "keep-last=4", "5", True, False, False)
    helps = build_parser(resolve("replicate"))[0].format_help()
    assert "--every INTERVAL" in helps and "--now TIME" in helps and "as JSON" in helps
