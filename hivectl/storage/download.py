"""Downloading ISOs and cloud images: resumable, verified, decompressed in-process.

- The download goes to ``<store>/<file>.part`` and is renamed only when complete and verified; an
  interrupted download leaves the ``.part`` behind and the same command resumes it with an HTTP
  ``Range`` request (a server that ignores ranges makes us start over, which is still correct).
- A resume is only ever spliced onto the same file: the validator the server sent when the ``.part``
  was started (a strong ``ETag``, else ``Last-Modified``) is kept next to it in ``.<file>.part.validator``
  and sent as ``If-Range`` (RFC 9110 section 13.1.5); a server whose file changed answers ``200`` with
  the whole new file, and the download starts again from zero. A ``.part`` without a recorded
  validator (the server sent none, or an older hivectl left it) is never resumed, and a ``206`` whose
  validator differs from the recorded one is refused the same way.
- ``--sha256 HEX`` or ``--sums URL|FILE`` (``SHA256SUMS`` in GNU ``HASH  name`` / ``HASH *name`` form or
  BSD ``SHA256 (name) = HASH`` form) is checked before the file is kept; a mismatch removes the
  download, since resuming it could never fix it.
- ``.xz``, ``.gz``, ``.bz2`` and ``.zst`` downloads are decompressed in-process into the final name;
  all-zero blocks become holes, so a raw image stays sparse. The compressed file is removed afterwards.
- Only ``http``/``https`` URLs; the file name is the URL's last path component and must be a plain name.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hivectl import validate
from hivectl.errors import ConfigError, Conflict, HivectlError
from hivectl.rcfile import atomic_write_bytes
from hivectl.storage import compression, sparse

CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_GNU_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
_BSD_LINE = re.compile(r"SHA256 \((.+)\) = ([0-9a-fA-F]{64})")
USER_AGENT = "hivectl"


@dataclass(frozen=True)
class Fetched:
    path: Path  # the file now in the store
    downloaded: int  # bytes transferred by this run
    resumed_from: int  # bytes already there from an earlier run
    sha256: str


class Progress:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def update(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and now - self._shown >= 0.1:
            self._shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-6) / (1 << 20)
        got = self.done / (1 << 20)
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            bar = "#" * int(pct / 4)
            text = (f"\r{self.label} [{bar:<25}] {pct:5.1f}% {got:8.1f} / {self.total / (1 << 20):.1f} MiB "
                    f"{rate:6.1f} MiB/s")
        else:
            text = f"\r{self.label} {got:8.1f} MiB {rate:6.1f} MiB/s"
        sys.stderr.write(text)
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


def url_file_name(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(None, "URL", url, "expected an http:// or https:// URL")
    name = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
    return validate.file_name(None, "URL", name) if name else validate.file_name(None, "URL", url)


def parse_sums(text: str, name: str, source: str) -> str:
    """The SHA-256 listed for ``name`` in a checksum file (GNU or BSD format; PGP armour is skipped)."""
    for raw in text.splitlines():
        line = raw.strip()
        match = _GNU_LINE.fullmatch(line)
        if match and match.group(2).lstrip("./") == name:
            return match.group(1).lower()
        match = _BSD_LINE.fullmatch(line)
        if match and match.group(1).lstrip("./") == name:
            return match.group(2).lower()
    raise HivectlError(f"{source} lists no SHA-256 checksum for {name}")


@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    body: IO[bytes]


def _open(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> _Response:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - the scheme was checked
    except urllib.error.HTTPError as error:
        if error.code == 416:  # range not satisfiable: the caller decides whether the .part is complete
            return _Response(416, {k.lower(): v for k, v in error.headers.items()}, error)
        raise HivectlError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HivectlError(f"{url}: {reason}") from None
    return _Response(response.status, {k.lower(): v for k, v in response.headers.items()}, response)


def expected_digest(name: str, sha256: str | None, sums: str | None) -> str | None:
    """The checksum to verify against, from ``--sha256`` or ``--sums`` (URL or local file)."""
    if sha256 is not None:
        if not _HEX64.fullmatch(sha256):
            raise ConfigError(None, "--sha256", sha256, "expected 64 hexadecimal digits")
        return sha256.lower()
    if sums is None:
        return None
    if sums.startswith(("http://", "https://")):
        with _open(sums).body as body:
            text = body.read(4 << 20).decode("utf-8", errors="replace")
    else:
        try:
            text = Path(sums).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise HivectlError(f"{sums}: cannot read the checksum file: {error}") from None
    return parse_sums(text, name, sums)


def final_name(name: str) -> str:
    """What a download is called once decompressed (``noble.img.xz`` → ``noble.img``)."""
    kind = compression.suffix_kind(name)
    return name[: -len(kind) - 1] if kind else name


def fetch(url: str, directory: Path, *, sha256: str | None = None, sums: str | None = None,
          progress: bool | None = None, timeout: float = 60) -> Fetched:
    """Download ``url`` into ``directory`` (resuming a ``.part`` left by an earlier run), verify, decompress."""
    name = url_file_name(url)
    digest = expected_digest(name, sha256, sums)
    target = directory / final_name(name)
    if target.exists():
        raise Conflict(f"{target} already exists; remove it first to download it again")
    if not directory.is_dir():
        raise HivectlError(f"{directory} does not exist; run 'hivectl init' or create the store's directory")
    part = directory / f"{name}.part"
    memo = directory / f".{name}.part.validator"
    have = part.stat().st_size if part.exists() else 0
    validator = _read_validator(memo) if have else None
    response = _open(url, {"Range": f"bytes={have}-", "If-Range": validator} if validator else None, timeout)
    if response.status == 206 and _validator(response.headers) != validator:
        # the server ignored If-Range and sent a range of another version of the file: start over
        response.body.close()
        response = _open(url, None, timeout)
    hasher = hashlib.sha256()
    resumed = have if validator and response.status in (206, 416) else 0
    if resumed:
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                hasher.update(block)
    downloaded = 0
    try:
        status = response.status
        if status == 416:
            total = _content_range_total(response.headers.get("content-range", ""))
            if total != have:
                raise HivectlError(f"{url}: the server refused to resume at byte {have}; remove {part} and retry")
        else:
            if status == 206:
                start = _content_range_start(response.headers.get("content-range", ""))
                if start != have:
                    raise HivectlError(f"{url}: the server resumed at byte {start}, not {have}; remove {part}")
                mode = "ab"
            else:  # 200: the whole file (it changed, the server ignored Range, or nothing was there)
                mode = "wb"
                # Drop the old bytes before recording the new validator: a crash between the two must
                # not leave old bytes next to a validator that would let them be resumed.
                part.unlink(missing_ok=True)
                memo.unlink(missing_ok=True)
                fresh = _validator(response.headers)
                if fresh is not None:
                    atomic_write_bytes(memo, fresh.encode(), 0o600)
            length = response.headers.get("content-length")
            total = resumed + int(length) if length and length.isdigit() else None
            bar = Progress(name, total, progress)
            bar.update(resumed)
            with open(part, mode) as out:
                for block in iter(lambda: response.body.read(CHUNK), b""):
                    out.write(block)
                    hasher.update(block)
                    downloaded += len(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
            bar.finish()
            if total is not None and resumed + downloaded != total:
                raise HivectlError(f"{url}: the connection closed after {resumed + downloaded} of {total} bytes; "
                                   f"the partial download is kept in {part}: run the same command to resume")
    finally:
        response.body.close()
    got = hasher.hexdigest()
    if digest is not None and got != digest:
        part.unlink(missing_ok=True)
        memo.unlink(missing_ok=True)
        raise HivectlError(f"{name}: SHA-256 mismatch (expected {digest}, got {got}); the download was removed")
    kind = compression.detect_file(part)
    if kind is None or compression.suffix_kind(name) is None:
        os.replace(part, target)
    else:
        decompress_into(part, target, kind)
        part.unlink()
    memo.unlink(missing_ok=True)
    return Fetched(target, downloaded, resumed, got)


def _validator(headers: Mapping[str, str]) -> str | None:
    """What identifies this version of the file for ``If-Range``: a strong ETag, else Last-Modified.

    A weak ETag (``W/"..."``) may not be used in ``If-Range`` (RFC 9110 section 13.1.5), so it counts as
    none. Values with control characters are refused: they are sent back as a header.
    """
    etag = headers.get("etag", "").strip()
    if etag and not etag.startswith("W/") and etag.isprintable():
        return etag
    modified = headers.get("last-modified", "").strip()
    return modified if modified and modified.isprintable() else None


def _read_validator(memo: Path) -> str | None:
    try:
        text = memo.read_bytes()[:1024].decode("ascii", errors="strict").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text and text.isprintable() else None


def _content_range_start(value: str) -> int | None:
    match = re.fullmatch(r"bytes ([0-9]+)-[0-9]+/([0-9]+|\*)", value.strip())
    return int(match.group(1)) if match else None


def _content_range_total(value: str) -> int | None:
    match = re.fullmatch(r"bytes (?:\*|[0-9]+-[0-9]+)/([0-9]+)", value.strip())
    return int(match.group(1)) if match else None


def decompress_into(source: Path, target: Path, kind: str,
                    on_write: Callable[[int], None] | None = None) -> int:
    """Decompress ``source`` into a new ``target`` (temp file + rename), keeping zero blocks as holes.

    Returns the decompressed size. On any failure (corrupt data, a full disk) nothing is left at
    ``target``.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    size = 0
    try:
        with open(source, "rb") as raw, compression.reader(kind, raw) as stream:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                view = memoryview(block)
                for i in range(0, len(block), sparse.ZERO_BLOCK):
                    piece = view[i:i + sparse.ZERO_BLOCK]
                    if not sparse.is_zero(piece):
                        os.pwrite(fd, piece, size + i)
                size += len(block)
                if on_write is not None:
                    on_write(len(block))
        os.ftruncate(fd, size)
        os.fchmod(fd, 0o644)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except HivectlError:
        raise
    except Exception as error:  # corrupt data raises lzma/zlib/bz2/EOF errors, a full disk OSError
        why = os.strerror(error.errno) if isinstance(error, OSError) and error.errno else str(error)
        raise HivectlError(f"{source.name}: cannot decompress ({kind}): {why}; nothing was written") from None
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
    return size
