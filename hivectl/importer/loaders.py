"""The loader command line that prepares the VM before bhyve runs: bhyveload(8) or grub-bhyve.

A guest without a boot ROM is loaded by one of them, then bhyve runs the VM they left in
``/dev/vmm/NAME``. hivectl runs the loader itself before each boot (``loader=bhyveload`` or ``grub``), so
the import keeps what shapes that run: the boot disk, the loader's environment and files, the memory
(which must be bhyve's), and for grub-bhyve its root device, directory and device map. grub-bhyve's long
options and option permutation follow GNU argp, as grub2-bhyve's ``main.c`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hivectl.importer.words import ImportRefused, Where, getopt, program_name


@dataclass
class Loader:
    """What one loader command line asks for; ``where`` of each part for refusals."""

    kind: str  # bhyveload | grub
    name: str
    where: Where
    memory: tuple[str, Where] | None = None
    wired: bool = False
    console: tuple[str, Where] | None = None
    disks: list[tuple[str, Where]] = field(default_factory=list)  # bhyveload -d, in order
    env: list[tuple[str, Where]] = field(default_factory=list)  # bhyveload -e name=value
    host_dir: tuple[str, Where] | None = None  # bhyveload -h
    loader: tuple[str, Where] | None = None  # bhyveload -l
    core: Where | None = None  # bhyveload -C
    root: tuple[str, Where] | None = None  # grub-bhyve -r
    device_map: tuple[str, Where] | None = None  # grub-bhyve -m
    directory: tuple[str, Where] | None = None  # grub-bhyve -d
    cfg_file: tuple[str, Where] | None = None  # grub-bhyve -g


def parse_bhyveload(argv: list[str], line: int | None = None) -> Loader:
    """``bhyveload [-CS] [-c cons] [-d disk]... [-e name=value]... [-h dir] [-l loader] [-m mem] NAME``."""
    parsed = getopt(argv, "CSc:d:e:h:l:m:", line)
    if len(parsed.operands) != 1:
        where = parsed.operands[1][1] if len(parsed.operands) > 1 else Where(len(argv) - 1, argv[-1], line)
        raise ImportRefused(where, "bhyveload takes exactly one VM name, after its options")
    name, name_where = parsed.operands[0]
    result = Loader("bhyveload", name, name_where)
    for option in parsed.options:
        value = option.value or ""
        if option.letter == "S":
            result.wired = True
        elif option.letter == "C":
            result.core = option.where
        elif option.letter == "c":
            result.console = (value, option.where)
        elif option.letter == "d":
            result.disks.append((value, option.where))
        elif option.letter == "e":
            if "=" not in value:
                raise ImportRefused(option.where, "expected -e name=value")
            result.env.append((value, option.where))
        elif option.letter == "h":
            result.host_dir = (value, option.where)
        elif option.letter == "l":
            if result.loader is not None:
                raise ImportRefused(option.where, "-l can only be given once (bhyveload refuses a second)")
            result.loader = (value, option.where)
        elif option.letter == "m":
            result.memory = (value, option.where)
    return result


_GRUB_LONG = {"root": "r", "device-map": "m", "directory": "d", "grub-cfg": "g", "cons-dev": "c", "memory": "M",
              "evga": "e", "ncons": "n", "verbose": "v", "hold": "H"}
_GRUB_TAKES = set("rmdgcM")


GrubOptions = list[tuple[str, str | None, Where]]


def _grub_words(argv: list[str], line: int | None) -> tuple[GrubOptions, list[tuple[str, Where]]]:
    """argp's reading: short and long options (unambiguous prefixes), permuted around operands."""
    options: GrubOptions = []
    operands: list[tuple[str, Where]] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            operands += [(argv[k], Where(k, argv[k], line)) for k in range(i + 1, len(argv))]
            break
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            matches = [k for k in _GRUB_LONG if k.startswith(name)]
            if name in _GRUB_LONG:
                matches = [name]
            if len(matches) != 1:
                raise ImportRefused(Where(i, word, line), "grub-bhyve has no such option (or it is ambiguous)")
            letter = _GRUB_LONG[matches[0]]
            if letter in _GRUB_TAKES and not sep:
                if i + 1 >= len(argv):
                    raise ImportRefused(Where(i, word, line), f"--{matches[0]} needs an argument")
                options.append((letter, argv[i + 1], Where(i, f"{word} {argv[i + 1]}", line)))
                i += 2
                continue
            options.append((letter, value if sep else None, Where(i, word, line)))
        elif word.startswith("-") and word != "-":
            letter = word[1]
            if letter not in "rmdgcMenvHS":
                raise ImportRefused(Where(i, word, line), f"grub-bhyve has no option -{letter}")
            if letter in _GRUB_TAKES:
                if len(word) > 2:
                    options.append((letter, word[2:], Where(i, word, line)))
                elif i + 1 < len(argv):
                    options.append((letter, argv[i + 1], Where(i, f"{word} {argv[i + 1]}", line)))
                    i += 1
                else:
                    raise ImportRefused(Where(i, word, line), f"-{letter} needs an argument")
            else:
                for flag in word[1:]:
                    if flag not in "envHS":
                        raise ImportRefused(Where(i, word, line), f"grub-bhyve has no flag -{flag}")
                    options.append((flag, None, Where(i, word, line)))
        else:
            operands.append((word, Where(i, word, line)))
        i += 1
    return options, operands


def parse_grub(argv: list[str], line: int | None = None) -> Loader:
    """``grub-bhyve [-r root] [-m device.map] [-d dir] [-g grub.cfg] [-c cons] [-M mem] [-S] NAME``."""
    options, operands = _grub_words(argv, line)
    if not operands:
        raise ImportRefused(Where(len(argv) - 1, argv[-1], line), "grub-bhyve names no VM")
    name, name_where = operands[-1]  # argp: a later operand replaces an earlier one (grub2-bhyve main.c)
    result = Loader("grub", name, name_where)
    for letter, value, where in options:
        text = value or ""
        if letter == "S":
            result.wired = True
        elif letter == "r":
            result.root = (text, where)
        elif letter == "m":
            result.device_map = (text, where)
        elif letter == "d":
            result.directory = (text, where)
        elif letter == "g":
            result.cfg_file = (text, where)
        elif letter == "c":
            result.console = (text, where)
        elif letter == "M":
            result.memory = (text, where)
        elif letter == "v":
            continue  # verbose output only
        else:
            raise ImportRefused(where, f"hivectl runs grub-bhyve without -{letter} (no key keeps it)")
    return result


def parse(argv: list[str], line: int | None = None) -> Loader:
    """A bhyveload or grub-bhyve command line."""
    program = program_name(argv[0]) if argv else ""
    if program == "bhyveload":
        return parse_bhyveload(argv, line)
    if program == "grub-bhyve":
        return parse_grub(argv, line)
    raise ImportRefused(Where(0, argv[0] if argv else "", line), "expected a bhyveload or grub-bhyve command line")
