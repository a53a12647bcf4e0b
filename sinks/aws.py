"""An aioboto3 client for a sink's AWS service (Kinesis, S3), from its settings."""

from __future__ import annotations

import contextlib
from typing import Any

import aioboto3

from sinks.fields import AwsFields


async def open_client(settings: AwsFields, service: str, stack: contextlib.AsyncExitStack) -> Any:
    """A client of ``service`` at the settings' endpoint, closed with ``stack``; the keys
    when given, the standard AWS credential chain otherwise."""
    credentials = {}
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        credentials = {
            "aws_access_key_id": settings.access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
        }
    session = aioboto3.Session(region_name=settings.region, **credentials)
    return await stack.enter_async_context(
        session.client(service, endpoint_url=settings.endpoint_url)
    )
