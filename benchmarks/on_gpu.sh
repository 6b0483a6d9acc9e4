#!/usr/bin/env bash
# Everything that needs a GPU, in as few calls as possible on a bare CUDA machine that has torch,
# transformers, peft and accelerate but no internet (the `device` machine).
#
#   bash benchmarks/on_gpu.sh fetch          # HERE, with internet: wheels for Python 3.12 -> .whl/
#   bash benchmarks/on_gpu.sh tests          # THERE: the gpu-marked tests (train, runs, app panel)
#   bash benchmarks/on_gpu.sh bench [CASES]  # THERE: worker vs Trainer, merged into RESULTS.md
#
# Each case takes 1-2 minutes (both sides, model load included): under the device tool's
# 10-minute limit, name at most four per call, e.g. "full bf16,lora r16" then "qlora,dora".
#
# THERE means a call that carries .whl (device tool: carry [".whl"]). Logs and the updated
# RESULTS.md are copied to $OUT (the device tool's folder that comes back), else to .gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.gpu}"
mkdir -p "$out"

# What the GPU image lacks (see .library KINDS.md), pinned to what CI tests here.
WHEELS=(pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
        datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 tomli-w==1.2.0 platformdirs==4.14.7
        msgspec==0.22.0 bitsandbytes==0.50.2
        textual==8.2.8 rich==15.0.0 markdown-it-py==4.3.0 mdit-py-plugins==0.7.0
        linkify-it-py==2.2.0 uc-micro-py==2.0.0 pytest-asyncio==1.5.0 liger-kernel==0.8.5)

install() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "wheel install failed: is .whl carried?"; exit 1; }
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
    python3 -c "import torch, transformers, peft, accelerate, bitsandbytes as b;
print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft',
      peft.__version__, 'accelerate', accelerate.__version__, 'bitsandbytes', b.__version__)" \
        | tee -a "$out/gpu.txt"
}

case "${1:-}" in
fetch)
    args=()
    for platform in manylinux_2_28_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
                    manylinux2014_x86_64; do args+=(--platform "$platform"); done
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${args[@]}" -d .whl "${WHEELS[@]}"
    ;;
tests)
    install
    # two sessions: tests/ and tests/tui/ each have a conftest.py imported as `conftest`
    python3 -m pytest -p no:cacheprovider -rs -v -m gpu tests/test_train_gpu.py \
        tests/test_runs_gpu.py 2>&1 | tee "$out/gpu-tests.log"
    first=$?
    python3 -m pytest -p no:cacheprovider -rs -v -m gpu tests/tui/test_tui_gpu.py 2>&1 \
        | tee -a "$out/gpu-tests.log"
    second=$?
    exit $((first || second))
    ;;
bench)
    install
    cases=()
    [ -n "${2:-}" ] && cases=(--cases "$2")
    python3 -m benchmarks --gpu --write "${cases[@]}" 2>&1 | tee "$out/gpu-bench.log"
    status=$?
    cp benchmarks/RESULTS.md "$out/RESULTS.md"
    # each side's own output (worker.log, trainer.log per case), one file: few files come back
    tar czf "$out/side-logs.tgz" /tmp/bench-trainer-gpu-*/*/*.log 2>/dev/null
    exit "$status"
    ;;
*)
    sed -n 2,13p "$0"
    exit 2
    ;;
esac
