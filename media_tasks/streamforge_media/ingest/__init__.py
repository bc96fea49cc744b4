"""Ingest adapters: one package per protocol, each turning its wire format into `streamforge_media.media`
tracks and access units and talking to the session layer only through `streamforge_media.ports`."""
