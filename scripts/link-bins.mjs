#!/usr/bin/env node
// Build step after tsc: makes dist/bin/ hold every executable the package ships.
// - TypeScript entry points get an extensionless wrapper whose shebang is the absolute path of the Node that built
//   them (no PATH lookup, no /usr/bin/env: the CLIs run as root).
// - Native executables built by node-gyp are copied from build/Release.
// - JSON data files under src/ are copied next to their compiled modules.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const distBin = join(root, 'dist', 'bin');
mkdirSync(distBin, { recursive: true });

for (const file of readdirSync(join(root, 'src', 'bin'))) {
  if (!file.endsWith('.ts')) continue;
  const name = file.slice(0, -3);
  const wrapper = join(distBin, name);
  writeFileSync(wrapper, `#!${process.execPath}\nimport './${name}.js';\n`);
  chmodSync(wrapper, 0o755);
}

const native = [
  ['nvidia-runtime', 'nvidia-runtime'],
  ['nvidia-runtime-hook', 'nvidia-runtime-hook'],
  ['nvml-probe', 'nvml-probe'],
];
for (const [built, shipped] of native) {
  const from = join(root, 'build', 'Release', built);
  if (existsSync(from)) {
    copyFileSync(from, join(distBin, shipped));
    chmodSync(join(distBin, shipped), 0o755);
  }
}

// The launcher prints its decision instead of acting on it when invoked under this name (nvidia-ctk explain, tests).
if (existsSync(join(distBin, 'nvidia-runtime'))) {
  rmSync(join(distBin, 'nvidia-runtime-decide'), { force: true });
  symlinkSync('nvidia-runtime', join(distBin, 'nvidia-runtime-decide'));
}

// Under the toolkit's prestart hook names the launcher execs Node with dist/runtime/prestart-hook.js (allowlisted
// environment): what `docker run --gpus` finds on dockerd's PATH.
if (existsSync(join(distBin, 'nvidia-runtime'))) {
  for (const name of ['nvidia-container-runtime-hook', 'nvidia-container-toolkit']) {
    rmSync(join(distBin, name), { force: true });
    symlinkSync('nvidia-runtime', join(distBin, name));
  }
}

// The hook speaks NVIDIA's nvidia-cdi-hook grammar when invoked under that name, which the toolkit's CDI specs
// use (/usr/bin/nvidia-cdi-hook; scripts/setup.sh links it there when no file exists at that path).
if (existsSync(join(distBin, 'nvidia-runtime-hook'))) {
  rmSync(join(distBin, 'nvidia-cdi-hook'), { force: true });
  symlinkSync('nvidia-runtime-hook', join(distBin, 'nvidia-cdi-hook'));
}

function copyJson(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) copyJson(path);
    else if (entry.endsWith('.json')) {
      const target = join(root, 'dist', relative(join(root, 'src'), path));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(path, target);
    }
  }
}
copyJson(join(root, 'src'));
