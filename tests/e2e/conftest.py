"""Fixtures of the API tests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from collabdesk.services.context import ServiceContext
from tests.e2e.http_world import HttpWorld, build_world


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)
