#!/usr/bin/env bash
# The README's first command: install what nvidia-runtime needs on a Debian/Ubuntu host (as root), build it, install
# it as a Debian package (npm run package; docs/install.md), and run the main job with the installed /usr/bin names.
# On a host without an NVIDIA GPU it creates a mock driver root and uses that instead.
set -euo pipefail
umask 022   # config.toml must not be group/world-writable (the runtime refuses it)
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs packages and creates device nodes)" >&2; exit 1; }
command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || { echo "setup.sh: Node.js 20 or newer is required (with npm)" >&2; exit 1; }

bash scripts/install-packages.sh   # the one package list (scripts/packages.txt), shared with CI

npm ci

echo "== building and installing the Debian package"
# It replaces NVIDIA's toolkit packages (the same /usr/bin names): apt would remove them; that is left to you.
for p in nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$'; then
    echo "setup.sh: $p is installed; nvidia-runtime replaces it (same commands): apt-get remove $p first" >&2; exit 1
  fi
done
version=$(node -p 'require("./package.json").version')
npm run --silent package -- --out "$PWD" >/dev/null
# An installation from before the package linked the build tree into /usr/local/bin, ahead of /usr/bin on PATH:
# those links go (only links into a dist/bin/ of the same name); /usr/bin/nvidia-cdi-hook and config.toml it made
# are taken over by the package (dpkg replaces the unowned link; --force-confold keeps the existing config.toml).
for exe in nvidia-runtime nvidia-ctk nvidia-container-cli nvidia-container-runtime-hook nvidia-container-toolkit; do
  if [ -L "/usr/local/bin/$exe" ] && case "$(readlink "/usr/local/bin/$exe")" in */dist/bin/"$exe") true ;; *) false ;; esac; then
    rm -f "/usr/local/bin/$exe"
  fi
done
# --reinstall: the same version rebuilt from a changed tree is installed too. Engine configs are not touched by it.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "./nvidia-runtime_${version}_$(dpkg --print-architecture).deb"
hash -r

if [ -e /dev/nvidiactl ] && command -v nvidia-smi >/dev/null; then
  DRIVER_ROOT=/
else
  DRIVER_ROOT=/var/lib/nvidia-runtime/mock-driver
  echo "== no NVIDIA GPU here: creating a mock driver root with 8 GPUs at $DRIVER_ROOT"
  /usr/bin/nvidia-ctk mock-driver --root "$DRIVER_ROOT" --gpus 8
  # The conffile (/etc/nvidia-container-runtime/config.toml) points the runtime at it; kept on upgrades.
  /usr/bin/nvidia-ctk config --set "nvidia-container-cli.root=$DRIVER_ROOT" --in-place
fi

echo "== nvidia-container-cli --root $DRIVER_ROOT info"
/usr/bin/nvidia-container-cli --root "$DRIVER_ROOT" info
echo "== nvidia-container-cli --root $DRIVER_ROOT list --device all"
/usr/bin/nvidia-container-cli --root "$DRIVER_ROOT" list --device all

echo "== registering /usr/bin/nvidia-runtime with Docker"
# /usr/bin/nvidia-container-runtime-hook on dockerd's PATH is what makes `docker run --gpus` work with plain runc.
mkdir -p /etc/docker
/usr/bin/nvidia-ctk runtime configure --runtime=docker --nvidia-runtime-path /usr/bin/nvidia-runtime
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
