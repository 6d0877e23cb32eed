"""Signature verification: Standard Webhooks, Stripe, GitHub and a generic HMAC.

Each check reads the raw body and the headers before anything is parsed; a missing,
malformed, stale or wrong signature raises BadSignature with a reason a developer can act on.
Comparisons are constant-time.
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hookflow_shared.errors import Unauthorized
from hookflow_shared.models import SignatureConfig


class BadSignature(Unauthorized):
    pass


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trigger's signature check, with its secret decrypted once."""

    config: SignatureConfig
    secret: bytes
    clock: Callable[[], float] = time.time

    @property
    def headers(self) -> tuple[str, ...]:
        """Lower-cased names of the headers this scheme reads (kept out of the context)."""
        scheme = self.config.scheme
        if scheme == "standardWebhooks":
            return ("webhook-signature",)
        if scheme == "stripe":
            return ("stripe-signature",)
        if scheme == "github":
            return ("x-hub-signature-256", "x-hub-signature")
        assert self.config.header is not None
        return (self.config.header.lower(),)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        match self.config.scheme:
            case "standardWebhooks":
                self._standard_webhooks(headers, body)
            case "stripe":
                self._stripe(headers, body)
            case "github":
                self._github(headers, body)
            case "hmac":
                self._generic(headers, body)

    def _fresh(self, timestamp: str, header: str) -> None:
        try:
            signed_at = int(timestamp)
        except ValueError:
            raise BadSignature(
                f"{header} is not a Unix time in seconds: {timestamp[:32]!r}"
            ) from None
        skew = abs(self.clock() - signed_at)
        if skew > self.config.tolerance:
            raise BadSignature(
                f"signature timestamp is {skew:.0f} s away from now (tolerance "
                f"{self.config.tolerance} s): a replay, or a clock that is off"
            )

    def _standard_webhooks(self, headers: Mapping[str, str], body: bytes) -> None:
        message_id = _required(headers, "webhook-id")
        timestamp = _required(headers, "webhook-timestamp")
        signatures = _required(headers, "webhook-signature")
        self._fresh(timestamp, "webhook-timestamp")
        key = self.secret.removeprefix(b"whsec_")
        try:
            key = base64.b64decode(key, validate=True)
        except binascii.Error:
            raise BadSignature("the trigger's whsec_ secret is not base64") from None
        signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
        expected = base64.b64encode(hmac.digest(key, signed, "sha256"))
        candidates = [
            part.partition(",")[2].encode() for part in signatures.split() if part.startswith("v1,")
        ]
        if not candidates:
            raise BadSignature("webhook-signature has no v1 signature (`v1,<base64>`)")
        if not _any_equal(expected, candidates):
            raise BadSignature(
                "no webhook-signature matches the body (wrong secret, or the body was changed)"
            )

    def _stripe(self, headers: Mapping[str, str], body: bytes) -> None:
        header = _required(headers, "stripe-signature")
        timestamp, candidates = None, []
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            if name == "t":
                timestamp = value
            elif name == "v1":
                candidates.append(value.encode())
        if timestamp is None or not candidates:
            raise BadSignature("Stripe-Signature needs t=<time> and at least one v1=<signature>")
        self._fresh(timestamp, "Stripe-Signature t")
        expected = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        if not _any_equal(expected.hexdigest().encode(), candidates):
            raise BadSignature(
                "no v1 signature in Stripe-Signature matches the body (wrong secret?)"
            )

    def _github(self, headers: Mapping[str, str], body: bytes) -> None:
        header = headers.get("x-hub-signature-256")
        if header is None:
            raise BadSignature(
                "missing X-Hub-Signature-256 header (set a secret on the GitHub webhook)"
            )
        if not header.startswith("sha256="):
            raise BadSignature("X-Hub-Signature-256 must look like sha256=<hex>")
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode()):
            raise BadSignature("X-Hub-Signature-256 does not match the body (wrong secret?)")

    def _generic(self, headers: Mapping[str, str], body: bytes) -> None:
        config = self.config
        assert config.header is not None
        header = _required(headers, config.header)
        if not header.startswith(config.prefix):
            raise BadSignature(f"{config.header} must start with {config.prefix!r}")
        signed = body
        if config.timestamp_header is not None:
            timestamp = _required(headers, config.timestamp_header)
            self._fresh(timestamp, config.timestamp_header)
            signed = timestamp.encode() + b"." + body
        digest = hmac.digest(self.secret, signed, config.algorithm)
        given = header.removeprefix(config.prefix).strip()
        if config.encoding == "hex":
            matches = hmac.compare_digest(digest.hex().encode(), given.lower().encode())
        else:
            matches = hmac.compare_digest(base64.b64encode(digest), given.encode())
        if not matches:
            raise BadSignature(
                f"{config.header} does not match the body (wrong secret or encoding?)"
            )


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise BadSignature(f"missing {name} header")
    return value


def _any_equal(expected: bytes, candidates: list[bytes]) -> bool:
    """Compares against every candidate (no early exit), each in constant time."""
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(expected, candidate)
    return found
