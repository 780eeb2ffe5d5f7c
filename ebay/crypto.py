"""User tokens at rest: AES-GCM (cryptography), 256-bit key from EBAY_TOKEN_KEY or derived from SECRET_KEY.

Derivation (HKDF-SHA256 over SECRET_KEY) needs no extra secret to deploy: every machine that scales out
already shares SECRET_KEY. Set EBAY_TOKEN_KEY to keep tokens readable across a SECRET_KEY rotation.
Each value is bound to its row and field by the associated data, so a ciphertext copied to another user's
row does not decrypt.
"""

import base64
import binascii
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "v1:"


class TokenDecryptError(Exception):
    """The stored token cannot be decrypted (other key, or tampered): the user must reconnect eBay."""


@functools.lru_cache(maxsize=4)
def _key(configured, secret_key):
    if configured:
        try:
            key = base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                "EBAY_TOKEN_KEY must be 32 random bytes in base64, e.g. the output of "
                "python -c \"import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())\""
            )
        return key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"jobsite-ebay-tokens",
                info=b"ebay user token key v1").derive(secret_key.encode())


def key():
    return _key(settings.EBAY_TOKEN_KEY, settings.SECRET_KEY)


def encrypt(plaintext, context):
    nonce = os.urandom(12)
    sealed = AESGCM(key()).encrypt(nonce, plaintext.encode(), context.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(token, context):
    if not token:
        return ""
    if not token.startswith(PREFIX):
        raise TokenDecryptError("unknown token format")
    try:
        raw = base64.urlsafe_b64decode(token[len(PREFIX):])
        return AESGCM(key()).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise TokenDecryptError("the stored eBay token cannot be decrypted with the current key") from exc
