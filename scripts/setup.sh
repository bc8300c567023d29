#!/usr/bin/env bash
# The README's first command: install what nvidia-runtime needs on a Debian/Ubuntu host (as root), build it, and
# run the main job. On a host without an NVIDIA GPU it creates a mock driver root and uses that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs packages and creates device nodes)" >&2; exit 1; }
command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || { echo "setup.sh: Node.js 20 or newer is required (with npm)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential python3 runc docker.io containerd busybox-static >/dev/null

npm ci

if [ -e /dev/nvidiactl ] && command -v nvidia-smi >/dev/null; then
  DRIVER_ROOT=/
else
  DRIVER_ROOT=/var/lib/nvidia-runtime/mock-driver
  echo "== no NVIDIA GPU here: creating a mock driver root with 8 GPUs at $DRIVER_ROOT"
  dist/bin/nvidia-ctk mock-driver --root "$DRIVER_ROOT" --gpus 8
fi

echo "== nvidia-container-cli --root $DRIVER_ROOT info"
dist/bin/nvidia-container-cli --root "$DRIVER_ROOT" info
echo "== nvidia-container-cli --root $DRIVER_ROOT list --device all"
dist/bin/nvidia-container-cli --root "$DRIVER_ROOT" list --device all
