"""Per-GPU memory, utilisation, power and temperature through NVML (nvidia-ml-py).

NVML is initialised once; where the library or driver is missing `sample_gpus()` returns []
and `gpu_unavailable_reason()` says why, so the app can show "no GPU" instead of failing.
NVML inside VMs lists no processes, so per-run memory comes from the run's own step events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

_lock = threading.Lock()
_state: dict[str, object] = {"ready": None, "reason": ""}
GIB = 1024**3


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    mem_used_gib: float
    mem_total_gib: float
    util_pct: float | None
    power_w: float | None
    power_limit_w: float | None
    temperature_c: float | None

    @property
    def mem_fraction(self) -> float:
        return self.mem_used_gib / self.mem_total_gib if self.mem_total_gib else 0.0


def _nvml():
    """The pynvml module, initialised, or None (with the reason kept for the UI)."""
    with _lock:
        if _state["ready"] is None:
            try:
                import pynvml
                pynvml.nvmlInit()
                _state["ready"], _state["module"] = True, pynvml
            except Exception as error:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound, driver errors
                _state["ready"], _state["reason"] = False, _describe(error)
        return _state.get("module") if _state["ready"] else None


def _describe(error: Exception) -> str:
    if isinstance(error, ImportError):
        return "no GPU: nvidia-ml-py is not installed"
    return f"no GPU: NVML unavailable ({error})"


def gpu_unavailable_reason() -> str:
    """Empty when GPUs can be read, else a short line such as 'no GPU: NVML unavailable (...)'."""
    if _nvml() is not None:
        return ""
    return str(_state["reason"])


def gpu_count() -> int:
    """CUDA GPUs the driver sees (0 without NVML); cheap, no torch."""
    nvml = _nvml()
    if nvml is None:
        return 0
    try:
        return int(nvml.nvmlDeviceGetCount())
    except Exception:  # noqa: BLE001
        return 0


def driver_version() -> str | None:
    """The NVIDIA driver's version ("570.124.06"), None without NVML."""
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        version = nvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001 - any NVML error: unknown
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def sample_gpus() -> list[GpuReading]:
    """One reading per visible GPU; [] without NVML. A GPU that fails to answer is left out."""
    nvml = _nvml()
    if nvml is None:
        return []
    try:
        count = nvml.nvmlDeviceGetCount()
    except Exception:  # noqa: BLE001 - any NVML error means: nothing to show
        return []
    readings = []
    for index in range(count):
        try:
            readings.append(_read(nvml, index))
        except Exception:  # noqa: BLE001,S112 - a GPU that fails to answer is left out
            continue
    return readings


def _read(nvml, index: int) -> GpuReading:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    name = nvml.nvmlDeviceGetName(handle)
    return GpuReading(
        index=index, name=name.decode() if isinstance(name, bytes) else str(name),
        mem_used_gib=memory.used / GIB, mem_total_gib=memory.total / GIB,
        util_pct=_optional(lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        power_w=_optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
        power_limit_w=_optional(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0),
        temperature_c=_optional(lambda: float(nvml.nvmlDeviceGetTemperature(
            handle, nvml.NVML_TEMPERATURE_GPU))))


def _optional(read) -> float | None:
    """Some boards (and MIG slices) do not report power or utilisation: show a dash."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return None
