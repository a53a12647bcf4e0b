"""An aioboto3 client for a sink's AWS service (Kinesis, S3), from its settings."""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import Field, SecretStr

from producer.plugins import AddressedSinkSettings


class AwsFields(AddressedSinkSettings):
    """Where an AWS service is and who calls it (Kinesis, S3)."""

    endpoint_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:4566 for LocalStack; unset: AWS."
    )
    region: str = Field("us-east-1", description="AWS region (or AWS_DEFAULT_REGION).")
    access_key_id: SecretStr | None = Field(
        None, description="Unset: the standard AWS credential chain (AWS_ACCESS_KEY_ID, ...)."
    )
    secret_access_key: SecretStr | None = Field(None, description="Never logged.")


async def open_client(settings: AwsFields, service: str, stack: contextlib.AsyncExitStack) -> Any:
    """A client of ``service`` at the settings' endpoint, closed with ``stack``; the keys
    when given, the standard AWS credential chain otherwise."""
    import aioboto3  # 0.3 s to import: only when a sink connects

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
