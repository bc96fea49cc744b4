"""The RTMP simple handshake (C0/C1/C2 ↔ S0/S1/S2).

S1 carries zeros in bytes 4..7, which tells librtmp-based clients (OBS, rtmpdump) to skip the
digest-based Flash Player 9 handshake; ffmpeg and GStreamer's rtmp2 accept it as is.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536


class HandshakeError(ValueError):
    pass


async def server_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Raises HandshakeError, asyncio.IncompleteReadError or a timeout from the caller's wait_for."""
    c0 = await reader.readexactly(1)
    if c0[0] != RTMP_VERSION:
        # Covers HTTP ("G"/"P"), TLS (0x16) and encrypted RTMPE (6) alike.
        raise HandshakeError(f"unsupported handshake version 0x{c0[0]:02x}")
    c1 = await reader.readexactly(HANDSHAKE_SIZE)
    s1 = struct.pack(">II", int(time.monotonic() * 1000) & 0xFFFFFFFF, 0) + os.urandom(HANDSHAKE_SIZE - 8)
    writer.write(bytes([RTMP_VERSION]) + s1 + c1)
    await writer.drain()
    # C2 should echo S1; clients differ in how faithfully, so it is read but not judged.
    await reader.readexactly(HANDSHAKE_SIZE)
