"""Development secrets of the embedded stack: the webhook keys of the senders it knows.

The slugs follow intake's webhook protocol (services/intake/webhook.py, CONTRACTS.md); the stack
names them here rather than importing the service, so it starts the services without importing
them. tests/unit/test_webhook.py checks that every slug here names a webhook source.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

# The portals, the 13 Longgang windows, the Shenzhen civic-centre west hall, the SMS provider.
DEV_WEBHOOK_SLUGS: tuple[str, ...] = (
    "longgang-qyfw",
    "gdzwfw",
    "sz-finance",
    *(f"window-LG-W{n:02d}" for n in range(1, 14)),
    "window-SZ-CIVIC-CENTER-WEST",
    "sms-aliyun",
)


def dev_webhook_keys(slugs: Iterable[str] = DEV_WEBHOOK_SLUGS) -> dict[str, str]:
    """Fresh random secrets for `slugs`, the WEBHOOK_KEYS of a development stack."""
    return {slug: secrets.token_urlsafe(32) for slug in slugs}
