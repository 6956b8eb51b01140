#!/usr/bin/env bash
# Is CUDA found, and does VGG-16 run on it? Prints the device, then times a forward pass.
# On a machine without a GPU it says "CUDA absent" and runs the same check on the CPU.
#     scripts/check-cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
. scripts/env.sh
# shellcheck source=steps.sh
. scripts/steps.sh
STEP_HINT="the message above says what failed"
python - <<'PY' || true
import torch
print(f"PyTorch {torch.__version__}: CUDA build {torch.version.cuda}, available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
PY
# The course image keeps this example prebuilt in a target folder the student cannot write
# (Containerfile): there it runs as it is; elsewhere cargo builds what changed, then runs it.
prebuilt="$CARGO_TARGET_DIR/debug/examples/check_cuda"
if [ -x "$prebuilt" ] && [ ! -w "$CARGO_TARGET_DIR" ]; then
  "$prebuilt"
else
  cargo run --quiet -p convlab --example check_cuda
fi
