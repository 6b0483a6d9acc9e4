"""The worker leaves torch's compiler unimported (TORCHDYNAMO_DISABLE) only for runs that
never use it: no architecture.compile and no bitsandbytes quantization (whose CPU kernels go
through torch.compile). The time it saves is a `make bench` row (worker start)."""

from __future__ import annotations

import pytest

from tui_tune.train.__main__ import compiler_unused


@pytest.mark.parametrize(("sets", "unused"), [
    (['adapter.method="lora"'], True),
    (['adapter.method="full"', 'architecture.backbone_dtype="bfloat16"'], True),
    (['adapter.method="lora"', "architecture.compile=true"], False),
    (['adapter.method="qlora"', 'architecture.backbone_dtype="int4"'], False),
    (['adapter.method="qssf"', 'architecture.backbone_dtype="int8"'], False),
])
def test_only_runs_without_compile_or_quantization_skip_the_compiler(make_run_dir, tmp_path,
                                                                      sets, unused):
    assert compiler_unused(make_run_dir(tmp_path / "run", sets)) is unused


def test_a_config_it_cannot_read_keeps_the_compiler(tmp_path):
    assert compiler_unused(tmp_path) is False  # no config.toml: the worker reports that
    (tmp_path / "config.toml").write_text("[architecture\n")
    assert compiler_unused(tmp_path) is False


def test_a_workers_peak_memory_is_its_own_not_its_launchers():
    """ru_maxrss carries the parent's memory over fork + exec (the accelerate launcher's,
    for a worker): the CPU step events' mem_peak_gib would count it. VmHWM does not."""
    import subprocess
    import sys
    ballast = b"x" * (400 << 20)  # the parent holds 400 MiB when it starts the child
    code = "from tui_tune.monitor.host import peak_rss_bytes; print(peak_rss_bytes())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert len(ballast) and int(child.stdout) < 200 << 20
