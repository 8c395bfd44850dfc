"""The Password credential provider (authui.dll's PasswordProvider): a user name and a
password, serialized as KERB_INTERACTIVE_UNLOCK_LOGON for the Negotiate package."""

from __future__ import annotations

CLSID = "{60b78e88-ead8-445c-9cfd-0b87f74ea6cd}"
NAME = "PasswordProvider"


def get_serialization(user: str, secret: bytes) -> dict:
    domain, _, name = user.rpartition("\\")  # "NTMODEL\alice" or "alice"
    return {"user": name, "domain": domain, "secret": secret, "pin": False}
