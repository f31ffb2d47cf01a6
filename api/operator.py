"""Operator authentication for platform writes (custom configs): a guard on those routes.

Read routes stay open. A write needs ``Authorization: Bearer <AGC_OPERATOR_TOKEN>``;
``agcluster up`` generates the token into its state dir and prints where it is. Without a
configured token, writes are refused outright: an API nobody secured must not accept them.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import Forbidden, Unauthorized


def operator_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """401 without the operator token (or with a wrong one), 403 when none is configured."""
    expected = connection.app.state.settings.operator_token.get_secret_value()
    if not expected:
        raise Forbidden(
            "config writes are disabled: this API has no operator token (set AGC_OPERATOR_TOKEN)"
        )
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized(
            "this route needs the operator token: send `Authorization: Bearer <operator token>`"
        )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized("wrong operator token")
