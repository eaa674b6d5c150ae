"""The artifact repository: where file outputs live between the task that wrote them, their
consumers, downloads, retries and retention (docs/artifacts.md). Imports core and settings only."""

from myapp.artifacts.repository import LocalArtifacts, RemoteArtifacts, open_repository

__all__ = ["LocalArtifacts", "RemoteArtifacts", "open_repository"]
