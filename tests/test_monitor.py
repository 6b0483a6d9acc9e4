"""GPU and host sampling: real NVML where present, a clean "no GPU" where it is not."""

from __future__ import annotations

from tui_tune.monitor import GpuReading, gpu_unavailable_reason, sample_gpus, sample_host


def test_gpus_are_read_or_reported_missing():
    readings = sample_gpus()
    reason = gpu_unavailable_reason()
    if readings:
        assert reason == ""
        for gpu in readings:
            assert isinstance(gpu, GpuReading)
            assert 0 <= gpu.mem_used_gib <= gpu.mem_total_gib and gpu.mem_total_gib > 0
            assert gpu.name
    else:
        assert reason.startswith("no GPU")


def test_host_reading_is_sane():
    sample_host()
    host = sample_host()
    assert 0.0 <= host.cpu_pct <= 100.0
    assert host.cpu_count >= 1
    assert 0 < host.ram_used_gib < host.ram_total_gib
