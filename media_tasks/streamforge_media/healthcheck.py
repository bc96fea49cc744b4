"""Container health check: exit 0 if the RTMP port accepts a TCP connection, 1 otherwise."""

from __future__ import annotations

import os
import socket
import sys


def main() -> int:
    port = int(os.environ.get("RTMP_PORT", "1935"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return 0
    except OSError as exc:
        print(f"RTMP port {port} not accepting connections: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
