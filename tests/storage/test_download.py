"""``iso``/``img``: listing, downloads from a local HTTP server, verification, resume, decompression."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import pty
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl
from tests.storage.httpserver import FileServer

PAYLOAD = os.urandom(3 << 20)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verified_by_sha256_and_listed(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "tiny.iso").write_bytes(PAYLOAD)
    result = hivectl("iso", "--sha256", _sha(PAYLOAD), fileserver.url("tiny.iso"))
    assert result.status == 0, result.err
    assert (vmdir / ".iso" / "tiny.iso").read_bytes() == PAYLOAD
    assert not (vmdir / ".iso" / "tiny.iso.part").exists()
    assert hivectl("iso").out.split() == ["DATASTORE", "FILENAME", "default", "tiny.iso"]
    # never overwrite what is there
    again = hivectl("iso", fileserver.url("tiny.iso"))
    assert again.status == 1 and "already exists" in again.err


def test_checksum_mismatch_keeps_nothing(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "bad.img").write_bytes(PAYLOAD)
    result = hivectl("img", "--sha256", "0" * 64, fileserver.url("bad.img"))
    assert result.status == 1
    assert "SHA-256 mismatch" in result.err and "0" * 64 in result.err
    assert list((vmdir / ".img").iterdir()) == []
    assert hivectl("img").out.split() == ["DATASTORE", "FILENAME"]


@pytest.mark.parametrize("style", ["gnu", "gnu-binary", "bsd"])
def test_sums_file_and_url(vmdir: Path, fileserver: FileServer, tmp_path: Path, style: str) -> None:
    (fileserver.root / "a.img").write_bytes(PAYLOAD)
    line = {"gnu": f"{_sha(PAYLOAD)}  a.img", "gnu-binary": f"{_sha(PAYLOAD)} *a.img",
            "bsd": f"SHA256 (a.img) = {_sha(PAYLOAD)}"}[style]
    sums = f"{_sha(b'other')}  other.img\n{line}\n"
    (fileserver.root / "SHA256SUMS").write_text(sums)
    assert hivectl("img", "--sums", fileserver.url("SHA256SUMS"), fileserver.url("a.img")).status == 0
    (vmdir / ".img" / "a.img").unlink()
    local = tmp_path / "SHA256SUMS"
    local.write_text(sums.replace(_sha(PAYLOAD), _sha(b"tampered")))
    result = hivectl("img", "--sums", str(local), fileserver.url("a.img"))
    assert result.status == 1 and "mismatch" in result.err
    assert not (vmdir / ".img" / "a.img").exists()
    missing = hivectl("img", "--sums", fileserver.url("SHA256SUMS"), fileserver.url("SHA256SUMS"))
    assert missing.status == 1 and "lists no SHA-256 checksum for SHA256SUMS" in missing.err


def test_interrupted_download_resumes_with_range(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "big.img").write_bytes(PAYLOAD)
    fileserver.cut_after["big.img"] = 1 << 20
    first = hivectl("img", "--sha256", _sha(PAYLOAD), fileserver.url("big.img"))
    assert first.status == 1
    assert "run the same command to resume" in first.err
    part = vmdir / ".img" / "big.img.part"
    assert part.stat().st_size == 1 << 20
    assert not (vmdir / ".img" / "big.img").exists()
    assert hivectl("img").out.split() == ["DATASTORE", "FILENAME"], "a partial download is not listed"
    second = hivectl("img", "--sha256", _sha(PAYLOAD), fileserver.url("big.img"))
    assert second.status == 0, second.err
    assert fileserver.requests[-1] == ("big.img", f"bytes={1 << 20}-")
    assert (vmdir / ".img" / "big.img").read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_without_range_support_restarts_cleanly(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "c.img").write_bytes(PAYLOAD)
    (vmdir / ".img" / "c.img.part").write_bytes(b"stale bytes from another file")
    fileserver.ignore_range = True
    assert hivectl("img", "--sha256", _sha(PAYLOAD), fileserver.url("c.img")).status == 0
    assert (vmdir / ".img" / "c.img").read_bytes() == PAYLOAD


def _raw_image() -> bytes:
    """A raw disk with data at the start and end and 8 MiB of zeros between (must come out sparse)."""
    return os.urandom(256 << 10) + bytes(8 << 20) + os.urandom(256 << 10)


@pytest.mark.parametrize(("suffix", "compress"), [(".xz", lzma.compress), (".gz", gzip.compress),
                                                  (".bz2", bz2.compress)])
def test_decompressed_in_process_and_sparse(vmdir: Path, fileserver: FileServer, suffix: str,
                                            compress: object) -> None:
    raw = _raw_image()
    packed = compress(raw)  # type: ignore[operator]
    (fileserver.root / f"cloud.raw{suffix}").write_bytes(packed)
    result = hivectl("img", "--sha256", _sha(packed), fileserver.url(f"cloud.raw{suffix}"))
    assert result.status == 0, result.err
    out = vmdir / ".img" / "cloud.raw"
    assert out.read_bytes() == raw
    assert out.stat().st_blocks * 512 < len(raw) - (6 << 20), "zero runs became holes"
    assert sorted(p.name for p in (vmdir / ".img").iterdir()) == ["cloud.raw"]


def test_zstd_needs_the_module(vmdir: Path, fileserver: FileServer) -> None:
    frame = bytes.fromhex("28b52ffd2000010000")  # an empty zstd frame
    (fileserver.root / "x.img.zst").write_bytes(frame)
    result = hivectl("img", fileserver.url("x.img.zst"))
    try:
        import zstandard  # noqa: F401
    except ImportError:
        assert result.status == 1
        assert "zstandard" in result.err and "never runs an external decompressor" in result.err
        assert not (vmdir / ".img" / "x.img").exists()
    else:
        assert result.status == 0 and (vmdir / ".img" / "x.img").read_bytes() == b""


def test_corrupt_compressed_download_leaves_no_image(vmdir: Path, fileserver: FileServer) -> None:
    packed = bytearray(lzma.compress(_raw_image()))
    packed[len(packed) // 2] ^= 0xFF
    (fileserver.root / "broken.img.xz").write_bytes(bytes(packed))
    result = hivectl("img", fileserver.url("broken.img.xz"))
    assert result.status == 1 and "cannot decompress" in result.err
    assert not [p for p in (vmdir / ".img").iterdir() if not p.name.endswith((".part", ".part.validator"))]


def test_full_disk_while_decompressing_leaves_no_image(vmdir: Path, fileserver: FileServer) -> None:
    """A file size limit makes writes fail with EFBIG exactly like a full file system would fail them."""
    raw = b"hivectl!" * (2 << 20)  # 16 MiB that compresses to a few KiB
    packed = gzip.compress(raw)
    (fileserver.root / "huge.img.gz").write_bytes(packed)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    done = subprocess.run([sys.executable, "-m", "hivectl", "img", fileserver.url("huge.img.gz")],
                          capture_output=True, text=True, preexec_fn=limit, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "cannot decompress" in done.stderr and "nothing was written" in done.stderr
    leftovers = sorted(p.name for p in (vmdir / ".img").iterdir())
    assert leftovers == [".huge.img.gz.part.validator", "huge.img.gz.part"], \
        "only the verified download (and its validator, for If-Range) stays, to be reused"
    again = hivectl("img", fileserver.url("huge.img.gz"))
    assert again.status == 0, again.err
    assert fileserver.requests[-1][1] == f"bytes={len(packed)}-", "the kept download was not fetched again"
    assert (vmdir / ".img" / "huge.img").read_bytes() == raw


def test_progress_bar_only_on_a_terminal(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "p.iso").write_bytes(PAYLOAD)
    quiet = hivectl("iso", fileserver.url("p.iso"))
    assert quiet.status == 0 and "%" not in quiet.err
    (vmdir / ".iso" / "p.iso").unlink()
    main, secondary = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "hivectl", "iso", fileserver.url("p.iso")], stdout=subprocess.PIPE,
                          stderr=secondary, timeout=60, check=False)
    os.close(secondary)
    shown = b""
    try:
        while chunk := os.read(main, 65536):
            shown += chunk
    except OSError:
        pass
    os.close(main)
    assert done.returncode == 0
    assert b"100.0%" in shown and b"\r" in shown and b"p.iso" in shown


def test_bad_urls_and_names(vmdir: Path) -> None:
    assert "http:// or https://" in hivectl("iso", "ftp://example.org/x.iso").err
    assert "plain file name" in hivectl("iso", "http://127.0.0.1:9/.hidden").err
    assert hivectl("iso", "--sha256", "xyz", "http://127.0.0.1:9/a.iso").status == 1


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_file_changed_on_the_server_is_downloaded_again_not_spliced(vmdir: Path, fileserver: FileServer,
                                                                       validator: str) -> None:
    """If-Range with the validator recorded when the .part started: a changed file answers 200, restart."""
    fileserver.validators = (validator,)
    served = fileserver.root / "moving.img"
    old, new = os.urandom(3 << 20), os.urandom(3 << 20)
    served.write_bytes(old)
    os.utime(served, (1_700_000_000, 1_700_000_000))
    fileserver.cut_after["moving.img"] = 1 << 20
    assert hivectl("img", fileserver.url("moving.img")).status == 1
    recorded = (vmdir / ".img" / ".moving.img.part.validator").read_text()
    served.write_bytes(new)  # same size, other bytes, a later mtime: a new release under the same URL
    os.utime(served, (1_700_000_100, 1_700_000_100))
    second = hivectl("img", fileserver.url("moving.img"))
    assert second.status == 0, second.err
    assert fileserver.if_ranges == [None, recorded], "If-Range sent with the recorded validator"
    assert fileserver.requests[-1] == ("moving.img", f"bytes={1 << 20}-")
    assert (vmdir / ".img" / "moving.img").read_bytes() == new
    assert sorted(p.name for p in (vmdir / ".img").iterdir()) == ["moving.img"], "no .part or validator left"


def test_an_unchanged_file_is_resumed_with_if_range(vmdir: Path, fileserver: FileServer) -> None:
    (fileserver.root / "same.img").write_bytes(PAYLOAD)
    fileserver.cut_after["same.img"] = 1 << 20
    assert hivectl("img", fileserver.url("same.img")).status == 1
    second = hivectl("img", "--sha256", _sha(PAYLOAD), fileserver.url("same.img"))
    assert second.status == 0, second.err
    assert fileserver.if_ranges[-1] is not None and fileserver.if_ranges[-1].startswith('"')
    assert len(fileserver.if_ranges) == 2, "resumed in one request, not restarted"
    assert (vmdir / ".img" / "same.img").read_bytes() == PAYLOAD


def test_a_server_ignoring_if_range_cannot_splice_a_changed_file(vmdir: Path, fileserver: FileServer) -> None:
    """A broken server sends 206 of the new version: the 206's ETag differs, so the client starts over."""
    fileserver.honour_if_range = False
    served = fileserver.root / "broken.img"
    old, new = os.urandom(2 << 20), os.urandom(2 << 20)
    served.write_bytes(old)
    fileserver.cut_after["broken.img"] = 1 << 20
    assert hivectl("img", fileserver.url("broken.img")).status == 1
    served.write_bytes(new)
    second = hivectl("img", fileserver.url("broken.img"))
    assert second.status == 0, second.err
    assert (vmdir / ".img" / "broken.img").read_bytes() == new


def test_a_part_without_a_validator_is_not_resumed(vmdir: Path, fileserver: FileServer) -> None:
    """No ETag and no Last-Modified: nothing tells that the .part is of this file, so start from zero."""
    fileserver.validators = ()
    served = fileserver.root / "anon.img"
    served.write_bytes(os.urandom(2 << 20))
    fileserver.cut_after["anon.img"] = 1 << 20
    assert hivectl("img", fileserver.url("anon.img")).status == 1
    assert not (vmdir / ".img" / ".anon.img.part.validator").exists()
    new = os.urandom(2 << 20)
    served.write_bytes(new)
    assert hivectl("img", fileserver.url("anon.img")).status == 0
    assert fileserver.requests[-1] == ("anon.img", None), "no Range without a validator"
    assert (vmdir / ".img" / "anon.img").read_bytes() == new
