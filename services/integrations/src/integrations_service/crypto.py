"""Integration credentials at rest: AES-256-GCM under a key derived from `SECRETS_KEY`.

A sealed value is `b"\\x01" + key id (4 bytes) + nonce (12) + ciphertext‖tag`. The key id lets a
rotated install decrypt with `SECRETS_KEY_PREVIOUS` while writing with the new key; the
associated data names the org and the column, so a ciphertext copied into another org's row (or
another column) fails to open instead of quietly lending its secret.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_INFO = b"interview-scheduler/integrations/credentials/v1"
_MIN_LENGTH = 1 + 4 + 12 + 16  # version, key id, nonce, GCM tag (an empty plaintext)


class SecretsKeyError(Exception):
    """A stored secret cannot be opened with the configured keys."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason  # never the value: safe to log and show


class _Key:
    def __init__(self, material: str) -> None:
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            material.encode()
        )
        self.aead = AESGCM(raw)
        self.id = hashlib.sha256(raw).digest()[:4]


class Sealer:
    def __init__(self, current: str, previous: Iterable[str] = ()) -> None:
        self._current = _Key(current)
        self._keys = {k.id: k for k in (self._current, *(_Key(p) for p in previous if p))}

    @staticmethod
    def key_id_of(sealed: bytes) -> bytes | None:
        """The id of the key a value was sealed with (None: not a sealed value)."""
        if len(sealed) < _MIN_LENGTH or sealed[:1] != _VERSION:
            return None
        return bytes(sealed[1:5])

    def is_current(self, sealed: bytes) -> bool:
        """Sealed with `SECRETS_KEY` (not a previous key): `integrations reseal` leaves it."""
        return self.key_id_of(sealed) == self._current.id

    @staticmethod
    def _aad(org_id: uuid.UUID, column: str) -> bytes:
        return f"{org_id}:{column}".encode()

    def seal(self, plaintext: str, *, org_id: uuid.UUID, column: str) -> bytes:
        nonce = os.urandom(12)
        body = self._current.aead.encrypt(nonce, plaintext.encode(), self._aad(org_id, column))
        return _VERSION + self._current.id + nonce + body

    def open(self, sealed: bytes, *, org_id: uuid.UUID, column: str) -> str:
        key_id = self.key_id_of(sealed)
        if key_id is None:
            raise SecretsKeyError(column, "not a sealed value")
        key = self._keys.get(key_id)
        if key is None:
            raise SecretsKeyError(column, "sealed with a key that is not configured")
        try:
            plain = key.aead.decrypt(
                bytes(sealed[5:17]), bytes(sealed[17:]), self._aad(org_id, column)
            )
        except InvalidTag as exc:
            raise SecretsKeyError(column, "does not open for this org") from exc
        return plain.decode()
