"""The ABR ladder: configured rungs, narrowed to what a given source can feed."""

from __future__ import annotations

import json
from dataclasses import dataclass

AUDIO_BITRATE_KBPS = 128


@dataclass(frozen=True)
class Rung:
    name: str
    height: int
    bitrate_kbps: int


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    bitrate_kbps: int

    @property
    def maxrate_kbps(self) -> int:
        return self.bitrate_kbps * 11 // 10

    @property
    def audio_only(self) -> bool:
        return self.height == 0

    def as_item(self) -> dict[str, object]:
        return {"name": self.name, "width": self.width, "height": self.height, "bitrate_kbps": self.bitrate_kbps}


DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung("1080p", 1080, 6000),
    Rung("720p", 720, 3000),
    Rung("480p", 480, 1200),
    Rung("360p", 360, 700),
    Rung("160p", 160, 250),
)


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """Parse `[{"name": "720p", "height": 720, "bitrate_kbps": 3000}, ...]`; raises ValueError."""
    raw = json.loads(text)
    if not isinstance(raw, list) or not raw:
        raise ValueError("ladder must be a non-empty JSON list")
    rungs = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError("each rung must be an object")
        name, height, bitrate = entry.get("name"), entry.get("height"), entry.get("bitrate_kbps")
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"bad rung name {name!r}")
        if not isinstance(height, int) or not 16 <= height <= 4320:
            raise ValueError(f"bad rung height {height!r}")
        if not isinstance(bitrate, int) or not 50 <= bitrate <= 100_000:
            raise ValueError(f"bad rung bitrate {bitrate!r}")
        rungs.append(Rung(name, height, bitrate))
    if len({r.name for r in rungs}) != len(rungs):
        raise ValueError("rung names must be unique")
    return tuple(sorted(rungs, key=lambda r: -r.height))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


AUDIO_ONLY = Rendition("audio", 0, 0, AUDIO_BITRATE_KBPS)
"""The one rendition of a publisher that sends no video: its audio, encoded once."""


def select_renditions(ladder: tuple[Rung, ...], source_width: int, source_height: int) -> list[Rendition]:
    """Rungs at or below the source's short side, keeping the source's aspect, all dimensions even.

    A rung's `height` is the size of the picture's short side, so a portrait source (1080x1920) gets the
    same rungs as the landscape one (1920x1080), turned: `1080p` is 1080x1920. A source smaller than every
    rung gets one rendition at its own (even) size, with the smallest rung's bitrate scaled down by pixel
    count. Raises ValueError for a non-positive size.
    """
    if source_width <= 0 or source_height <= 0:
        raise ValueError("source dimensions must be positive")
    portrait = source_width < source_height
    short, long_ = (source_width, source_height) if portrait else (source_height, source_width)
    aspect = long_ / short

    def sized(short_side: int, long_side: int) -> tuple[int, int]:
        return (short_side, long_side) if portrait else (long_side, short_side)

    kept = [r for r in sorted(ladder, key=lambda r: -r.height) if r.height <= short]
    if kept:
        # Rounding the long side to even may pass an odd source's own (160x171 → 160x172): never upscale.
        longest = max(2, long_ - long_ % 2)
        return [Rendition(r.name, *sized(_even(r.height), min(_even(r.height * aspect), longest)), r.bitrate_kbps)
                for r in kept]
    smallest = min(ladder, key=lambda r: r.height)
    width = max(2, source_width - source_width % 2)
    height = max(2, source_height - source_height % 2)
    scale = (width * height) / (_even(smallest.height * aspect) * smallest.height)
    return [Rendition(f"{min(width, height)}p", width, height, max(50, int(smallest.bitrate_kbps * scale)))]
