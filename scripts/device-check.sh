#!/usr/bin/env bash
# The real-GPU check of ../shared/docs/DEVICE.md, as one prepared run (no Node needed): build the NVML probe from the
# same enumeration source as the addon, run it against the machine's real libnvidia-ml, print nvidia-smi's view
# beside it, and compare field by field. Results go to $OUT (default ./device-check-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-check-out}
mkdir -p "$OUT"
gcc -std=gnu99 -O2 -Wall -o "$OUT/nvml-probe" native/probe/probe.c native/nvml/enumerate.c -ldl 2>"$OUT/build.log" || { cat "$OUT/build.log"; exit 1; }

lib=${NVML_LIBRARY:-}
[ -n "$lib" ] || lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-ml\.so\.1 .*x86-64/ {print $NF; exit}')
for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do
  [ -n "$lib" ] || { [ -e "$d/libnvidia-ml.so.1" ] && lib="$d/libnvidia-ml.so.1"; }
done
[ -n "$lib" ] || { echo "libnvidia-ml.so.1 not found" | tee "$OUT/error.txt"; exit 1; }
echo "$lib" > "$OUT/nvml-library.txt"
"$OUT/nvml-probe" "$lib" > "$OUT/probe.json" 2> "$OUT/probe.err"; echo "probe exit $?" >> "$OUT/probe.err"
nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,driver_version,compute_cap,memory.total --format=csv,noheader,nounits \
  > "$OUT/nvidia-smi.csv" 2>&1

# Compare: one line per GPU and field, "ok" or "MISMATCH".
python3 - "$OUT" <<'PY' > "$OUT/compare.txt" 2>&1 || true
import csv, json, sys
out = sys.argv[1]
probe = json.load(open(f"{out}/probe.json"))
rows = list(csv.reader(open(f"{out}/nvidia-smi.csv"), skipinitialspace=True))
bad = 0
for row, dev in zip(rows, probe["devices"]):
    idx, uuid, name, bus, drv, cc, mem = [c.strip() for c in row]
    pairs = {
        "index": (int(idx), dev["index"]), "uuid": (uuid, dev["uuid"]), "name": (name, dev["name"]),
        "pci.bus_id": (bus.lower(), dev["pciBusId"].lower()), "driver_version": (drv, probe["driverVersion"]),
        "compute_cap": (cc, f'{dev.get("ccMajor")}.{dev.get("ccMinor")}'),
        "memory.total MiB": (int(mem), round(dev.get("memoryTotal", 0) / 2**20)),
    }
    for k, (a, b) in pairs.items():
        ok = a == b
        bad += not ok
        print(f"GPU {idx} {k}: nvidia-smi={a!r} probe={b!r} {'ok' if ok else 'MISMATCH'}")
print(f"{len(rows)} GPUs (nvidia-smi), {len(probe['devices'])} (probe); mismatches: {bad}")
PY
cat "$OUT/compare.txt"
