"""SRT ingest adapter: a ctypes binding over the system libsrt with its listen callback (`libsrt`), the
caller's stream id (`streamid`), MPEG-TS packets → tracks and access units (`demux`), and the listener
(`server`). The only place that knows SRT or MPEG-TS."""
