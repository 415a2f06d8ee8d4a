"""A minimal VNC (RFB 3.8) client: enough to take one raw screenshot from QEMU's VNC server."""

from __future__ import annotations

import socket
import struct


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("VNC server closed the connection")
        data += chunk
    return data


def screenshot(path: str, timeout: float = 20.0) -> tuple[int, int, list[int]]:
    """Connect to a unix-socket VNC server without authentication; return (width, height, 32-bit pixels)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    try:
        _recv(sock, 12)  # "RFB 003.008\n"
        sock.sendall(b"RFB 003.008\n")
        count = _recv(sock, 1)[0]
        types = _recv(sock, count)
        if 1 not in types:
            raise ConnectionError(f"server wants authentication {list(types)}")
        sock.sendall(b"\x01")
        if struct.unpack(">I", _recv(sock, 4))[0] != 0:
            raise ConnectionError("security handshake failed")
        sock.sendall(b"\x01")  # shared
        width, height = struct.unpack(">HH", _recv(sock, 4))
        _recv(sock, 16)  # server pixel format
        name_len = struct.unpack(">I", _recv(sock, 4))[0]
        _recv(sock, name_len)
        # 32 bpp, depth 24, little endian, true colour, 8 bits per channel.
        pixel_format = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        sock.sendall(b"\x00\x00\x00\x00" + pixel_format)
        sock.sendall(struct.pack(">BBhI", 2, 0, 1, 0))  # SetEncodings: raw only
        sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # full update request
        pixels = [0] * (width * height)
        while True:
            kind = _recv(sock, 1)[0]
            if kind != 0:  # ignore bell/colour map/cut text: only framebuffer updates matter here
                if kind == 2:
                    continue
                if kind == 3:
                    _recv(sock, 3)
                    _recv(sock, struct.unpack(">I", _recv(sock, 4))[0])
                    continue
                raise ConnectionError(f"unexpected server message {kind}")
            _recv(sock, 1)
            (rects,) = struct.unpack(">H", _recv(sock, 2))
            for _ in range(rects):
                x, y, w, h, enc = struct.unpack(">HHHHi", _recv(sock, 12))
                if enc != 0:
                    if enc == -223:  # DesktopSize pseudo-encoding
                        continue
                    raise ConnectionError(f"unexpected encoding {enc}")
                raw = _recv(sock, w * h * 4)
                for row in range(h):
                    line = struct.unpack(f"<{w}I", raw[row * w * 4 : (row + 1) * w * 4])
                    start = (y + row) * width + x
                    pixels[start : start + w] = list(line)
            return width, height, pixels
    finally:
        sock.close()
