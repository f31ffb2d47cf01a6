"""Seal secrets (API keys, MCP credentials) for the bus and for Redis.

AES-256-GCM with a key the API and the workers share (``AGC_SECRET_KEY``). A sealed value
is ``v1.<base64url(nonce|ciphertext|tag)>``; the associated data binds it to one session, so a
sealed key lifted from one session's record cannot be replayed into another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SealError(Exception):
    """A sealed value could not be opened (wrong key, tampered, or another session's)."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return hashlib.sha256(purpose + b"\x00" + secret.encode()).digest()


class Sealer:
    """Seal and open secrets, and fingerprint API keys, with one shared secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("AGC_SECRET_KEY must be at least 16 characters")
        self._aead = AESGCM(_derive(secret, b"agc-seal"))
        self._mac_key = _derive(secret, b"agc-key-hash")

    def seal(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` for ``context`` (usually the session id)."""
        nonce = os.urandom(12)
        box = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return "v1." + base64.urlsafe_b64encode(nonce + box).decode()

    def open(self, sealed: str, *, context: str) -> str:
        """Decrypt a value sealed for ``context``; raise :class:`SealError` otherwise."""
        if not sealed.startswith("v1."):
            raise SealError("unknown sealed format")
        try:
            raw = base64.urlsafe_b64decode(sealed[3:].encode())
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError("sealed value does not open with this key") from exc

    def key_hash(self, api_key: str) -> str:
        """Keyed fingerprint of an API key: comparable, but useless to whoever reads Redis."""
        return hmac.new(self._mac_key, api_key.encode(), hashlib.sha256).hexdigest()

    def key_matches(self, api_key: str, expected_hash: str) -> bool:
        """Constant-time check of ``api_key`` against a stored fingerprint."""
        return hmac.compare_digest(self.key_hash(api_key), expected_hash)
