"""A Redis password that can rotate under a running service.

Redis accepts the old and the new password for a while (operator/indexforge_operator/
builders/redis_acl.py); the service must move to the new one without a restart. redis-py
asks a credential provider for the password on every new connection, so this provider reads
the mounted Secret file each time: connections opened after the kubelet updated the file
use the new password, connections already authenticated stay so (Redis does not disconnect
them when a password is added or removed), and a connection that was closed (a failover, a
Redis restart, an AUTH refused) reconnects with whatever the file holds then.

The file wins over the value from the environment: an env var is fixed for the process's
life, the file is what rotates.
"""

from __future__ import annotations

from pathlib import Path

from redis.credentials import CredentialProvider


class RotatingPassword(CredentialProvider):
    def __init__(self, *, file: Path, fallback: str | None = None) -> None:
        self.file, self.fallback = file, fallback

    def password(self) -> str:
        try:
            text = self.file.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or self.fallback or ""

    def get_credentials(self) -> tuple[str]:
        return (self.password(),)

    async def get_credentials_async(self) -> tuple[str]:
        return self.get_credentials()

    def __repr__(self) -> str:  # never the password
        return f"RotatingPassword(file={str(self.file)!r})"
