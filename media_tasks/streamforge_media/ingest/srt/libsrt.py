"""A small ctypes binding over the system libsrt (Debian 12: libsrt1.5-gnutls, 1.5.1): a listener with
`srt_listen_callback`, which no PyPI binding, ffmpeg or srt-live-transmit exposes.

The callback runs on libsrt's receiving thread during the caller's handshake, before the connection
exists (SRT draft, "Handshake" / conclusion phase): it reads the caller's stream id, may set a passphrase
on the new socket, and accepts (0) or rejects (-1, after `srt_setrejectreason`) it. Only the functions the
listener needs are bound; every call is blocking and thread-safe in libsrt, and none is made from the
asyncio loop's thread by the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

# SRT_SOCKOPT values (srt.h, 1.5.1)
SRTO_RCVSYN = 2
SRTO_RCVTIMEO = 14
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_STREAMID = 46
SRTO_PEERIDLETIMEO = 55
# Rejection codes a listen callback may set (access_control.h): SRT_REJX_*
REJECT_BAD_REQUEST = 1400
REJECT_UNAUTHORIZED = 1401
REJECT_FORBIDDEN = 1403
REJECT_BAD_MODE = 1405
REJECT_CONFLICT = 1409
REJECT_UNAVAILABLE = 1503
SRT_ERROR = -1
_LOG_CRIT = 2  # syslog's LOG_CRIT (libsrt's levels): its warnings and errors are ours to log
SRT_INVALID_SOCK = -1
_AF_INET = socket.AF_INET
# SRT_TRACEBSTATS (struct CBytePerfMon) offsets in libsrt 1.5.x, from srt.h (sizeof 496 bytes on x86-64):
# the prefix up to the instant measurements is the same in every 1.5 release.
_BSTATS_SIZE = 1024  # room for later releases that append fields
_PKT_RECV = 144  # int64 pktRecv: packets received in the interval (with retransmissions)
_PKT_RCV_LOSS = 156  # int pktRcvLoss: packets detected lost in the interval
_PKT_RCV_DROP = 236  # int pktRcvDrop: packets dropped as too late (never delivered)
_MS_RTT = 328  # double msRTT

LISTEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                   ctypes.c_char_p)
ListenHook = Callable[[int, str, str], int]
"""(new socket, peer "ip:port", stream id) → 0 to accept, or a REJECT_* code."""


class SrtError(OSError):
    """A libsrt call failed; the message is libsrt's last error."""


@dataclass(frozen=True)
class LinkStats:
    """Receiver figures since the previous read: packets received, lost (detected), dropped, RTT in ms."""

    received: int
    lost: int
    dropped: int
    rtt_ms: float


def _find_library() -> str:
    for name in ("srt-gnutls", "srt", "srt-openssl"):
        if path := ctypes.util.find_library(name):
            return path
    for path in ("libsrt-gnutls.so.1.5", "libsrt.so.1.5", "libsrt-openssl.so.1.5"):
        try:
            ctypes.CDLL(path)
            return path
        except OSError:
            continue
    raise OSError("libsrt not found: install Debian's libsrt1.5-gnutls (it comes with ffmpeg)")


class LibSrt:
    """The loaded library. `LibSrt.load()` returns the process-wide instance (srt_startup done once)."""

    _instance: LibSrt | None = None

    def __init__(self, path: str) -> None:
        lib = self.lib = ctypes.CDLL(path)
        c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
        for name, restype, argtypes in (
            ("srt_startup", c_int, []),
            ("srt_create_socket", c_int, []),
            ("srt_setsockflag", c_int, [c_int, c_int, c_void_p, c_int]),
            ("srt_getsockflag", c_int, [c_int, c_int, c_void_p, ctypes.POINTER(c_int)]),
            ("srt_bind", c_int, [c_int, c_void_p, c_int]),
            ("srt_listen", c_int, [c_int, c_int]),
            ("srt_getsockname", c_int, [c_int, c_void_p, ctypes.POINTER(c_int)]),
            ("srt_listen_callback", c_int, [c_int, LISTEN_CALLBACK, c_void_p]),
            ("srt_accept", c_int, [c_int, c_void_p, ctypes.POINTER(c_int)]),
            ("srt_setrejectreason", c_int, [c_int, c_int]),
            ("srt_recvmsg", c_int, [c_int, c_char_p, c_int]),
            ("srt_close", c_int, [c_int]),
            ("srt_bstats", c_int, [c_int, c_void_p, c_int]),
            ("srt_getlasterror_str", c_char_p, []),
            ("srt_setloglevel", None, [c_int]),
        ):
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        if lib.srt_startup() < 0:
            raise SrtError(self.last_error())
        lib.srt_setloglevel(_LOG_CRIT)  # libsrt's own lines (one per rejection, per close) would flood stderr

    @classmethod
    def load(cls) -> LibSrt:
        if cls._instance is None:
            cls._instance = cls(_find_library())
        return cls._instance

    def last_error(self) -> str:
        message = self.lib.srt_getlasterror_str()
        return message.decode(errors="replace") if message else "unknown libsrt error"

    def _check(self, result: int) -> int:
        if result == SRT_ERROR:
            raise SrtError(self.last_error())
        return result

    def set_int(self, sock: int, option: int, value: int) -> None:
        number = ctypes.c_int(value)
        self._check(self.lib.srt_setsockflag(sock, option, ctypes.byref(number), ctypes.sizeof(number)))

    def set_string(self, sock: int, option: int, value: str) -> None:
        raw = value.encode()
        self._check(self.lib.srt_setsockflag(sock, option, ctypes.c_char_p(raw), len(raw)))

    def listen(self, host: str, port: int, backlog: int, hook: ListenHook, *, latency_ms: int,
               peer_idle_ms: int) -> tuple[int, int, object]:
        """A listening socket on `host:port` (IPv4) whose callers `hook` admits; returns (socket, bound port,
        the callback object, which the caller must keep alive while the socket listens). Raises SrtError."""
        sock = self._check(self.lib.srt_create_socket())
        try:
            self.set_int(sock, SRTO_LATENCY, latency_ms)
            self.set_int(sock, SRTO_PEERIDLETIMEO, peer_idle_ms)
            address = struct.pack("=H", _AF_INET) + struct.pack(">H", port) + socket.inet_aton(host) + bytes(8)
            self._check(self.lib.srt_bind(sock, address, len(address)))
            name = ctypes.create_string_buffer(16)
            size = ctypes.c_int(16)
            self._check(self.lib.srt_getsockname(sock, name, ctypes.byref(size)))
            bound = struct.unpack(">H", name.raw[2:4])[0]

            def callback(_opaque: int | None, new_sock: int, _version: int, peer: int | None,
                         stream_id: bytes | None) -> int:
                code = hook(new_sock, _peer(peer), (stream_id or b"").decode("utf-8", "replace"))
                if code == 0:
                    return 0
                self.lib.srt_setrejectreason(new_sock, code)
                return -1

            c_callback = LISTEN_CALLBACK(callback)
            self._check(self.lib.srt_listen_callback(sock, c_callback, None))
            self._check(self.lib.srt_listen(sock, backlog))
        except SrtError:
            self.lib.srt_close(sock)
            raise
        return sock, bound, c_callback

    def accept(self, listener: int) -> int:
        """The next connected caller's socket (blocking); raises SrtError (also when the listener is closed)."""
        return self._check(self.lib.srt_accept(listener, None, None))

    def recv(self, sock: int, buffer: ctypes.Array[ctypes.c_char]) -> int:
        """Bytes of one message read into `buffer` (blocking; at most 1316 in live mode); 0 or less: closed."""
        return int(self.lib.srt_recvmsg(sock, buffer, len(buffer)))

    def close(self, sock: int) -> None:
        self.lib.srt_close(sock)

    def stats(self, sock: int) -> LinkStats:
        """The receiver's figures since the previous call (the interval counters are cleared); raises SrtError."""
        buffer = ctypes.create_string_buffer(_BSTATS_SIZE)
        self._check(self.lib.srt_bstats(sock, buffer, 1))
        raw = buffer.raw
        return LinkStats(received=struct.unpack_from("=q", raw, _PKT_RECV)[0],
                         lost=struct.unpack_from("=i", raw, _PKT_RCV_LOSS)[0],
                         dropped=struct.unpack_from("=i", raw, _PKT_RCV_DROP)[0],
                         rtt_ms=struct.unpack_from("=d", raw, _MS_RTT)[0])


def _peer(address: int | None) -> str:
    """"ip:port" of a sockaddr pointer (IPv4; "?" otherwise)."""
    if not address:
        return "?"
    raw = ctypes.string_at(address, 16)
    if struct.unpack("=H", raw[:2])[0] != _AF_INET:
        return "?"
    return f"{socket.inet_ntoa(raw[4:8])}:{struct.unpack('>H', raw[2:4])[0]}"
