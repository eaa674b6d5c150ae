"""A fake kube-apiserver for tests: the official client talks HTTP to it, tests drive it.

See README.md beside this file. Start one with `with FakeKubeServer() as kube:`.
"""

from tests.k8sfake.handler import RecordedRequest
from tests.k8sfake.server import FakeKubeServer

__all__ = ["FakeKubeServer", "RecordedRequest"]
