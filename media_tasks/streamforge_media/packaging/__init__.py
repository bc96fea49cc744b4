"""The packaging seam: a session's timeline of uploaded segments and the packagers that render manifests from it."""
