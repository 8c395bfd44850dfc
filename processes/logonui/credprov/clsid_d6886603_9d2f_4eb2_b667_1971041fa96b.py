"""The PIN credential provider (Windows Hello's NGC Credential Provider). Windows unlocks
a key in the NGC container with the PIN and logs on with it (Kerberos/NGC); the model
sends the PIN to lsass, which checks it against the account's PIN hash (a divergence)."""

from __future__ import annotations

CLSID = "{D6886603-9D2F-4EB2-B667-1971041FA96B}"
NAME = "NGC Credential Provider"


def get_serialization(user: str, secret: bytes) -> dict:
    domain, _, name = user.rpartition("\\")
    return {"user": name, "domain": domain, "secret": secret, "pin": True}
