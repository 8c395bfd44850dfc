"""The fixed keys of every log event: shared by the writer (nt/log.py) and every reader,
in a module that imports nothing, so a reader (``ntctl logs``) need not load structlog."""

FIXED_KEYS = ("ts", "boot_id", "pid", "image", "session", "level", "event")
