"""The codecs package's one exception, in its own module so the codec modules and `__init__` can both import it."""

from __future__ import annotations


class CodecError(ValueError):
    """Bytes that do not parse as the codec configuration or framing they claim to be."""
