"""k8ssim: a node simulator (kube-scheduler + kubelet) for a real kube-apiserver; see README.md."""

from tests.k8ssim.simulator import NodeSimulator, SimConfig

__all__ = ["NodeSimulator", "SimConfig"]
