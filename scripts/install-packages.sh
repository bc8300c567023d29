#!/usr/bin/env bash
# Installs the Debian packages of scripts/packages.txt (as root). Used by scripts/setup.sh and .ci/run, so the
# README's two commands and CI run on the same system.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
mapfile -t packages < <(grep -v '^[[:space:]]*\(#\|$\)' "$(dirname "$0")/packages.txt")
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
