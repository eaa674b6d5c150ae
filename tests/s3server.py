"""A real S3-protocol server on loopback for the artifact tests: moto's server mode
(ThreadedMotoServer, `moto[server]` in the dev extras) on a free port, with one bucket.

`running_s3_server()` sets the AWS_* variables botocore reads (any key works against moto) while
it runs, so settings built in a test name only the endpoint (`artifact_s3_endpoint_url`); processes
a test starts get them from `S3Server.env()`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "myapp-artifacts"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def url(self, prefix: str) -> str:
        """Return an artifact_repository URL under `prefix` in the bucket."""
        return f"s3://{self.bucket}/{prefix}"

    def env(self, prefix: str) -> dict[str, str]:
        """Return the environment of a myapp process storing its artifacts under `prefix`."""
        return {
            **CREDENTIALS,
            "MYAPP_ARTIFACT_REPOSITORY": self.url(prefix),
            "MYAPP_ARTIFACT_S3_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        """Return a boto3 client on the server (to look at what is stored, bypassing myapp)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        """Return every key in the bucket under `prefix`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """Run moto's S3 server on a free loopback port with an empty bucket until the block ends."""
    from moto.server import ThreadedMotoServer

    patch = pytest.MonkeyPatch()
    for name, value in CREDENTIALS.items():
        patch.setenv(name, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(f"http://127.0.0.1:{port}", BUCKET)
    try:
        s3.client().create_bucket(Bucket=BUCKET)
        yield s3
    finally:
        server.stop()
        patch.undo()
