"""The migration stream's framing: a length-prefixed JSON header, then that many payload bytes.

One frame per file, directory, data piece or request, so a receiver never has to trust a byte count it
has not checked: the header is at most ``MAX_HEADER`` bytes of JSON object, the payload at most
``MAX_PAYLOAD`` (the sender's pieces are ``storage/sparse.CHUNK``, 1 MiB), and a stream that ends in the
middle of a frame is an error, not a short file. Answers travel the other way as one JSON object per line.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

from hivectl.errors import HivectlError
from hivectl.jsonline import json_object

_LENGTHS = struct.Struct(">II")  # header length, payload length
MAX_HEADER = 64 << 10
MAX_PAYLOAD = 4 << 20


class StreamError(HivectlError):
    """The migration stream is malformed or ended early."""


def write_frame(out: IO[bytes], header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    if len(encoded) > MAX_HEADER or len(payload) > MAX_PAYLOAD:
        raise StreamError(f"frame too large ({len(encoded)} header bytes, {len(payload)} payload bytes)")
    out.write(_LENGTHS.pack(len(encoded), len(payload)))
    out.write(encoded)
    if payload:
        out.write(payload)


def _exactly(inp: IO[bytes], count: int, what: str) -> bytes:
    data = bytearray()
    while len(data) < count:
        piece = inp.read(count - len(data))
        if not piece:
            raise StreamError(f"the migration stream ended inside a frame's {what} "
                              f"({len(data)} of {count} bytes)")
        data += piece
    return bytes(data)


def read_frame(inp: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or None where the stream ends cleanly between frames."""
    first = inp.read(_LENGTHS.size)
    if not first:
        return None
    lengths = first + _exactly(inp, _LENGTHS.size - len(first), "length") if len(first) < _LENGTHS.size else first
    header_len, payload_len = _LENGTHS.unpack(lengths)
    if header_len > MAX_HEADER or payload_len > MAX_PAYLOAD:
        raise StreamError(f"frame too large ({header_len} header bytes, {payload_len} payload bytes)")
    try:
        header = json.loads(_exactly(inp, header_len, "header"))
    except ValueError as error:
        raise StreamError(f"a frame header is not JSON: {error}") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), str):
        raise StreamError("a frame header is not an object with a type 't'")
    return header, _exactly(inp, payload_len, "payload") if payload_len else b""


def write_answer(out: IO[bytes], answer: dict[str, Any]) -> None:
    out.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
    out.flush()


def read_answer(inp: IO[bytes]) -> dict[str, Any]:
    """The far end's next answer; its ``error`` raised as ``HivectlError`` (the far end's own words)."""
    line = inp.readline(MAX_HEADER)
    if not line:
        raise StreamError("the other host closed the migration stream without answering")
    answer = json_object(line, StreamError, "the other host answered")
    if answer.get("error"):
        raise HivectlError(str(answer["error"]))
    return answer
