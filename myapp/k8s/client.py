"""Build the official client's ApiClient: an explicit kubeconfig, in-cluster, or ~/.kube/config."""

from __future__ import annotations

import os

from kubernetes import client, config

from myapp.core.errors import MyappError
from myapp.k8s.config import KubeConfig


def make_api_client(cfg: KubeConfig, *, pool_size: int = 32) -> client.ApiClient:
    """Return an ApiClient for `cfg`; MyappError when no configuration can be loaded."""
    configuration = client.Configuration()
    try:
        if cfg.kubeconfig:
            config.load_kube_config(
                config_file=cfg.kubeconfig,
                context=cfg.context or None,  # type: ignore[no-untyped-call]
                client_configuration=configuration,
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(
                context=cfg.context or None,  # type: ignore[no-untyped-call]
                client_configuration=configuration,
            )
    except (config.ConfigException, OSError) as exc:
        raise MyappError(f"kubernetes: cannot load the cluster configuration: {exc}") from None
    # Each live log stream holds a connection; keep them pooled instead of discarded.
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)
