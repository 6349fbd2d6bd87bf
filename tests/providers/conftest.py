"""Sandbox servers for provider tests: real HTTP on a free port, stopped after each test."""

from collections.abc import Callable, Iterator

import pytest

from providers.sandbox.server import SandboxServer, start_in_thread


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start a sandbox with the given options (see start_in_thread); all stop at teardown."""
    servers: list[SandboxServer] = []

    def start(**options) -> SandboxServer:
        server = start_in_thread(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(start_sandbox) -> SandboxServer:
    """A sandbox without latency, failures, limits or key."""
    return start_sandbox()
