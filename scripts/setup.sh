#!/usr/bin/env bash
# The README's first command: install what nvidia-runtime needs on a Debian/Ubuntu host (as root), build it, and
# run the main job. On a host without an NVIDIA GPU it creates a mock driver root and uses that instead.
set -euo pipefail
umask 022   # config.toml must not be group/world-writable (the runtime refuses it)
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs packages and creates device nodes)" >&2; exit 1; }
command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || { echo "setup.sh: Node.js 20 or newer is required (with npm)" >&2; exit 1; }

bash scripts/install-packages.sh   # the one package list (scripts/packages.txt), shared with CI

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

echo "== installing nvidia-runtime into /usr/local/bin and registering it with Docker"
# nvidia-container-runtime-hook on dockerd's PATH is what makes `docker run --gpus` work with plain runc.
for exe in nvidia-runtime nvidia-ctk nvidia-container-cli nvidia-container-runtime-hook nvidia-container-toolkit; do ln -sfn "$PWD/dist/bin/$exe" "/usr/local/bin/$exe"; done
[ -e /usr/bin/nvidia-cdi-hook ] || [ -L /usr/bin/nvidia-cdi-hook ] || ln -s "$PWD/dist/bin/nvidia-cdi-hook" /usr/bin/nvidia-cdi-hook   # for CDI specs NVIDIA's toolkit wrote; never replaces its binary
mkdir -p /etc/nvidia-container-runtime
if [ ! -f /etc/nvidia-container-runtime/config.toml ]; then
  printf '[nvidia-container-cli]\nroot = "%s"\n' "$DRIVER_ROOT" > /etc/nvidia-container-runtime/config.toml.tmp
  mv /etc/nvidia-container-runtime/config.toml.tmp /etc/nvidia-container-runtime/config.toml
fi
mkdir -p /etc/docker
dist/bin/nvidia-ctk runtime configure --runtime=docker --nvidia-runtime-path /usr/local/bin/nvidia-runtime
if docker info >/dev/null 2>&1; then
  pkill -HUP -x dockerd   # runtimes are reloadable
  sleep 1
elif [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
  systemctl restart docker
else
  dockerd --iptables=false --bridge=none >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi

echo "== building a small local image (busybox + glibc + ldconfig; nothing is pulled)"
img=$(mktemp -d)
mkdir -p "$img/bin" "$img/sbin" "$img/etc/ld.so.conf.d" "$img/lib64" "$img/lib/x86_64-linux-gnu" "$img/dev" "$img/proc" "$img/sys" "$img/tmp"
cp /bin/busybox "$img/bin/" && for a in sh ls grep cat; do ln -s busybox "$img/bin/$a"; done
cp /sbin/ldconfig "$img/sbin/"
cp /lib64/ld-linux-x86-64.so.2 "$img/lib64/"
for l in libc.so.6 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0; do cp "/lib/x86_64-linux-gnu/$l" "$img/lib/x86_64-linux-gnu/"; done
echo 'include /etc/ld.so.conf.d/*.conf' > "$img/etc/ld.so.conf"
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' > "$img/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
ldconfig -r "$img"
tar -C "$img" -c . | docker import - nvidia-runtime-demo:latest >/dev/null
rm -rf "$img"

echo "== docker run --rm --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=1 nvidia-runtime-demo"
docker run --rm --runtime=nvidia --network none -e NVIDIA_VISIBLE_DEVICES=1 nvidia-runtime-demo:latest \
  sh -c 'ls -l /dev/nvidia*; nvidia-smi; ldconfig -p | grep libcuda'

echo "== docker run --rm --gpus device=0 nvidia-runtime-demo (plain runc + the prestart hook)"
docker run --rm --gpus device=0 --network none nvidia-runtime-demo:latest sh -c 'ls -l /dev/nvidia*; nvidia-smi -L' \
  || echo "setup.sh: docker run --gpus failed: dockerd finds nvidia-container-runtime-hook only when it starts; restart dockerd" >&2
