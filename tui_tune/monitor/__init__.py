"""GPU (NVML) and host (psutil) sampling for the app's monitor; no torch, degrades to "no GPU"."""

from tui_tune.monitor.gpu import GpuReading, gpu_count, gpu_unavailable_reason, sample_gpus
from tui_tune.monitor.host import HostReading, sample_host

__all__ = ["GpuReading", "HostReading", "gpu_count", "gpu_unavailable_reason", "sample_gpus", "sample_host"]
