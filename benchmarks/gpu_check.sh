#!/usr/bin/env bash
# The GPU check in one go: the CUDA tests (tests/test_cuda.py) and the GPU speed figures
# (benchmarks/gpu_speed.py: ResNet-18, batch 256, CIFAR-10 shape), in under ten minutes on one
# GPU. Everything it writes goes to OUTPUT_DIR: device.txt, cuda-tests.xml/.log,
# gpu-speed.json/.md/.log.
#
#   benchmarks/gpu_check.sh [OUTPUT_DIR]            # default hwprofiles-out/gpu-check
#
# Environment: PYTHON (default python3, one with a CUDA build of torch); WHEELS=DIR installs
# dependencies missing there from a folder of wheels first (machines without a package index)
# into OUTPUT_DIR/site; hwprofiles itself runs from src/ (no installation);
# DEVICE=cpu runs the same steps on the CPU (to try the script; SPEED_ARGS shortens the timing,
# e.g. "--model lenet5 --in-channels 1 --image-size 28 --repeats 2").
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-hwprofiles-out/gpu-check}
device=${DEVICE:-cuda}
mkdir -p "$out"
py=${PYTHON:-python3}
site="$out/site"
if [ -n "${WHEELS:-}" ]; then
    "$py" -m pip install -q --no-index --no-deps --upgrade --target "$site" "$WHEELS"/*.whl || exit 1
fi
# hwprofiles from this checkout, uninstalled: the built-in plugin registers itself without entry points
export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}"
"$py" - <<'PY' | tee "$out/device.txt"
import torch, hwprofiles
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, hwprofiles {hwprofiles.__version__}")
print(torch.cuda.get_device_name(0) if cuda else "no CUDA device visible")
PY
status=0
HWPROFILES_TEST_DEVICE=$device timeout 300 "$py" -m pytest -q -p no:cacheprovider -m cuda \
    --junitxml "$out/cuda-tests.xml" tests/test_cuda.py 2>&1 | tee "$out/cuda-tests.log" || status=1
# shellcheck disable=SC2086  # SPEED_ARGS is a list of options
timeout 240 "$py" benchmarks/gpu_speed.py --device "$device" --output-dir "$out" ${SPEED_ARGS:-} 2>&1 \
    | tee "$out/gpu-speed.log" || status=1
echo "gpu check: $([ $status = 0 ] && echo passed || echo FAILED); results in $out"
exit $status
