"""An aioboto3 client for a sink's AWS service (Kinesis, S3), from its settings."""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import Field, SecretStr

from producer.plugins import AddressedSinkSettings
from producer.sink import SinkError


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


# Errors that say who is calling, not whether the service is up: waiting cannot help.
_CREDENTIALS = ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
                "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
                "ExpiredToken", "ExpiredTokenException")  # fmt: skip


def explained(exc: Exception, kind: str, where: str) -> SinkError:
    """A check's failure as one line with what to do: credentials named as settings, an
    endpoint that does not answer as a service to start or wait for."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    prefix = f"SYNTHSTREAM_SINKS__{kind.upper()}__"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError) or (
        isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _CREDENTIALS
    ):
        return SinkError(
            f"{where}: {exc}", reason="credentials", waitable=False,
            hint=f"give credentials: {prefix}ACCESS_KEY_ID and {prefix}SECRET_ACCESS_KEY, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (LocalStack takes any, "
            f"e.g. test; its endpoint: {prefix}ENDPOINT_URL=http://127.0.0.1:4566)",
        )  # fmt: skip
    if isinstance(exc, EndpointConnectionError):
        return SinkError(f"{where}: nothing answers ({exc})", reason="connect",
                         hint=f"start it, or wait for it with --wait-for-sinks SECONDS; the "
                         f"address is {prefix}ENDPOINT_URL")  # fmt: skip
    return SinkError(f"{where}: {exc}")
