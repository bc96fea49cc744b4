"""`python -m streamforge_media`: run the RTMP ingest and media pipeline until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from streamforge_media.app import serve
from streamforge_media.config import ConfigError, MediaConfig


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = MediaConfig.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
