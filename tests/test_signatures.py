"""Signature schemes against their published test vectors and documented formats."""

import base64
import hmac
from typing import Any

import pytest
from multidict import CIMultiDict

from hookflow_gateway.signatures import BadSignature, Verifier
from hookflow_shared.models import SignatureConfig
from tests.samples import GH_BODY, GH_SECRET, GH_SIGNATURE, stripe_header

# Standard Webhooks' own example (standard-webhooks/standard-webhooks, README and libraries' tests).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# GitHub's documented example ("Validating webhook deliveries").


class Check:
    """A Verifier fed headers as the gateway feeds them: case-insensitive."""

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    def verify(self, headers: dict[str, str], body: bytes) -> None:
        self._verifier.verify(CIMultiDict(headers), body)


def verifier(scheme: str, secret: str, now: float, **config: Any) -> Check:
    config_model = SignatureConfig(scheme=scheme, **config)  # type: ignore[arg-type]
    return Check(Verifier(config_model, secret.encode(), clock=lambda: now))


def test_standard_webhooks_vector() -> None:
    check = verifier("standardWebhooks", SW_SECRET, SW_TIMESTAMP + 10)
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    check.verify(headers, SW_BODY)
    # Several signatures in one header (during a secret rotation): one match is enough.
    check.verify({**headers, "webhook-signature": "v1,bm90IHRoaXMgb25l " + SW_SIGNATURE}, SW_BODY)
    with pytest.raises(BadSignature, match="no webhook-signature matches"):
        check.verify(headers, SW_BODY + b" ")
    with pytest.raises(BadSignature, match="missing webhook-id"):
        check.verify({k: v for k, v in headers.items() if k != "webhook-id"}, SW_BODY)
    with pytest.raises(BadSignature, match="no v1 signature"):
        check.verify({**headers, "webhook-signature": "v1a,abc"}, SW_BODY)
    with pytest.raises(BadSignature, match="tolerance 300 s"):
        verifier("standardWebhooks", SW_SECRET, SW_TIMESTAMP + 301).verify(headers, SW_BODY)
    with pytest.raises(BadSignature, match="not a Unix time"):
        check.verify({**headers, "webhook-timestamp": "yesterday"}, SW_BODY)


def test_github_vector() -> None:
    check = verifier("github", GH_SECRET, 0)
    check.verify({"x-hub-signature-256": GH_SIGNATURE}, GH_BODY)
    with pytest.raises(BadSignature, match="does not match"):
        check.verify({"x-hub-signature-256": GH_SIGNATURE}, b"Hello, World?")
    with pytest.raises(BadSignature, match="missing X-Hub-Signature-256"):
        check.verify({"x-hub-signature": "sha1=abc"}, GH_BODY)
    with pytest.raises(BadSignature, match="sha256=<hex>"):
        check.verify({"x-hub-signature-256": GH_SIGNATURE.removeprefix("sha256=")}, GH_BODY)


def test_stripe_documented_format() -> None:
    secret, now, body = (
        "whsec_test_secret",
        1_764_320_000,
        b'{"id":"evt_1","type":"payment_intent.succeeded"}',
    )
    check = verifier("stripe", secret, now + 5)
    check.verify({"stripe-signature": stripe_header(secret, now, body)}, body)
    with pytest.raises(BadSignature, match="no v1 signature"):
        check.verify({"stripe-signature": stripe_header("whsec_other", now, body)}, body)
    with pytest.raises(BadSignature, match="away from now"):
        verifier("stripe", secret, now + 1000).verify(
            {"stripe-signature": stripe_header(secret, now, body)}, body
        )
    with pytest.raises(BadSignature, match="needs t="):
        check.verify({"stripe-signature": "v1=abc"}, body)


@pytest.mark.parametrize(("algorithm", "encoding"), [("sha256", "hex"), ("sha512", "base64")])
def test_generic_hmac(algorithm: str, encoding: str) -> None:
    secret, body, now = "s3cr3t", b'{"event":"order.paid"}', 1_764_320_000
    digest = hmac.digest(secret.encode(), f"{now}.".encode() + body, algorithm)
    signature = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    check = verifier(
        "hmac", secret, now, header="X-Signature", algorithm=algorithm, encoding=encoding,
        prefix="sig=", timestamp_header="X-Timestamp",
    )  # fmt: skip
    headers = {"x-signature": "sig=" + signature, "x-timestamp": str(now)}
    check.verify(headers, body)
    with pytest.raises(BadSignature, match="must start with 'sig='"):
        check.verify({**headers, "x-signature": signature}, body)
    with pytest.raises(BadSignature, match="missing X-Timestamp"):
        check.verify({"x-signature": headers["x-signature"]}, body)
    with pytest.raises(BadSignature, match="does not match"):
        check.verify({**headers, "x-timestamp": str(now + 1)}, body)


def test_hmac_needs_a_header() -> None:
    with pytest.raises(ValueError, match="needs `header`"):
        SignatureConfig(scheme="hmac")
