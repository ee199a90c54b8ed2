"""What every route depends on: the caller's key id, and the app's settings, worker client and store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from edge_api.auth import authenticate
from edge_api.forward import WorkerClient
from edge_api.settings import EdgeSettings
from edge_api.store import EdgeStore


def aws_event(request: Request) -> dict[str, Any] | None:
    """The API Gateway event when running under Mangum."""
    return request.scope.get("aws.event")


def caller(request: Request) -> str:
    """The caller's API key id (401/403 otherwise); remembered on the request for the access log."""
    key = authenticate(request.headers, aws_event(request), request.app.state.settings)
    request.state.key_id = key
    return key


def settings(request: Request) -> EdgeSettings:
    """The settings the app was built with."""
    return request.app.state.settings  # type: ignore[no-any-return]


def worker(request: Request) -> WorkerClient:
    """The pooled client to the worker."""
    return request.app.state.worker  # type: ignore[no-any-return]


def store(request: Request) -> EdgeStore:
    """S3 (uploads, results)."""
    return request.app.state.store  # type: ignore[no-any-return]


Caller = Annotated[str, Depends(caller)]
Settings = Annotated[EdgeSettings, Depends(settings)]
Worker = Annotated[WorkerClient, Depends(worker)]
Store = Annotated[EdgeStore, Depends(store)]
