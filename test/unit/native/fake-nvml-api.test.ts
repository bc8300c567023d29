/**
 * The fake libnvidia-ml's C API contract, called directly from a small C program (compiled here with cc):
 * UNINITIALIZED before init, ref-counted init, bogus handles and NULL pointers → INVALID_ARGUMENT (never a
 * crash), short buffers → INSUFFICIENT_SIZE, versioned and unversioned names, MIG handle helpers.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MOCK = join(REPO, 'build/Release/libnvidia-ml-mock.so');

// Each CHECK prints "<line>: <expression> = <got>" and counts mismatches; exit status = mismatches.
const PROGRAM = String.raw`
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "native/include/nvml_subset.h"
static int bad;
#define CHECK(expr, want) do { long got_ = (long)(expr); if (got_ != (long)(want)) { \
  printf("%d: %s = %ld, want %ld\n", __LINE__, #expr, got_, (long)(want)); bad++; } } while (0)
#define SYM(T, name) T name = (T)dlsym(lib, #name); if (!name) { printf("missing %s\n", #name); return 100; }
typedef nvmlReturn_t (*dev_uint_fn)(nvmlDevice_t, unsigned int *);
int main(int argc, char **argv) {
  (void)argc;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { printf("%s\n", dlerror()); return 100; }
  SYM(nvmlInit_v2_fn, nvmlInit_v2) SYM(nvmlInit_v2_fn, nvmlInit) SYM(nvmlShutdown_fn, nvmlShutdown)
  SYM(nvmlDeviceGetCount_v2_fn, nvmlDeviceGetCount_v2) SYM(nvmlDeviceGetCount_v2_fn, nvmlDeviceGetCount)
  SYM(nvmlDeviceGetHandleByIndex_v2_fn, nvmlDeviceGetHandleByIndex_v2)
  SYM(nvmlDeviceGetHandleByIndex_v2_fn, nvmlDeviceGetHandleByIndex)
  SYM(nvmlDeviceGetUUID_fn, nvmlDeviceGetUUID) SYM(nvmlDeviceGetName_fn, nvmlDeviceGetName)
  SYM(nvmlDeviceGetMinorNumber_fn, nvmlDeviceGetMinorNumber)
  SYM(nvmlDeviceGetPciInfo_fn, nvmlDeviceGetPciInfo) SYM(nvmlDeviceGetPciInfo_fn, nvmlDeviceGetPciInfo_v2)
  SYM(nvmlDeviceGetPciInfo_fn, nvmlDeviceGetPciInfo_v3)
  SYM(nvmlSystemGetDriverVersion_fn, nvmlSystemGetDriverVersion)
  SYM(nvmlDeviceGetMigDeviceHandleByIndex_fn, nvmlDeviceGetMigDeviceHandleByIndex)
  SYM(nvmlDeviceGetMaxMigDeviceCount_fn, nvmlDeviceGetMaxMigDeviceCount)
  SYM(dev_uint_fn, nvmlDeviceIsMigDeviceHandle) SYM(dev_uint_fn, nvmlDeviceGetIndex)
  SYM(nvmlDeviceGetGpuInstanceId_fn, nvmlDeviceGetGpuInstanceId)
  nvmlReturn_t (*fromMig)(nvmlDevice_t, nvmlDevice_t *) =
    (nvmlReturn_t (*)(nvmlDevice_t, nvmlDevice_t *))dlsym(lib, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle");
  nvmlReturn_t (*byUuid)(const char *, nvmlDevice_t *) =
    (nvmlReturn_t (*)(const char *, nvmlDevice_t *))dlsym(lib, "nvmlDeviceGetHandleByUUID");
  nvmlReturn_t (*memV2)(nvmlDevice_t, nvmlMemory_v2_t *) =
    (nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_v2_t *))dlsym(lib, "nvmlDeviceGetMemoryInfo_v2");
  nvmlReturn_t (*initFlags)(unsigned int) = (nvmlReturn_t (*)(unsigned int))dlsym(lib, "nvmlInitWithFlags");
  CHECK(fromMig != NULL && byUuid != NULL && memV2 != NULL && initFlags != NULL, 1);

  unsigned int n = 0;
  char buf[128];
  nvmlDevice_t dev = NULL, mig = NULL, parent = NULL, other = NULL;
  nvmlPciInfo_t pci;
  CHECK(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
  CHECK(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  CHECK(nvmlInit_v2(), NVML_SUCCESS);
  CHECK(nvmlInit(), NVML_SUCCESS);
  CHECK(initFlags(0), NVML_SUCCESS);
  CHECK(nvmlShutdown(), NVML_SUCCESS);
  CHECK(nvmlShutdown(), NVML_SUCCESS);
  CHECK(nvmlDeviceGetCount(&n), NVML_SUCCESS); /* still one reference */
  CHECK(n, 2);
  CHECK(nvmlDeviceGetCount_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetHandleByIndex_v2(2, &dev), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetHandleByIndex(1, &other), NVML_SUCCESS);
  CHECK(nvmlDeviceGetHandleByIndex_v2(0, &dev), NVML_SUCCESS);

  /* bogus handles: NULL, a stack address, a misaligned pointer into the real table */
  CHECK(nvmlDeviceGetUUID(NULL, buf, sizeof buf), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetUUID((nvmlDevice_t)(void *)buf, buf, sizeof buf), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetUUID((nvmlDevice_t)((char *)dev + 1), buf, sizeof buf), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetMinorNumber(dev, NULL), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetPciInfo_v3(dev, NULL), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetName(dev, NULL, 64), NVML_ERROR_INVALID_ARGUMENT);

  /* buffers */
  CHECK(nvmlDeviceGetUUID(dev, buf, 5), NVML_ERROR_INSUFFICIENT_SIZE);
  CHECK(nvmlDeviceGetUUID(dev, buf, sizeof buf), NVML_SUCCESS);
  CHECK(strcmp(buf, "GPU-a"), 0);
  CHECK(nvmlDeviceGetName(dev, buf, 8), NVML_ERROR_INSUFFICIENT_SIZE);
  CHECK(nvmlSystemGetDriverVersion(buf, 9), NVML_ERROR_INSUFFICIENT_SIZE);
  CHECK(nvmlSystemGetDriverVersion(buf, 10), NVML_SUCCESS);
  CHECK(strcmp(buf, "550.54.15"), 0);

  /* PCI info: all three names fill the v3 layout */
  nvmlDeviceGetPciInfo_fn pcis[3] = {nvmlDeviceGetPciInfo, nvmlDeviceGetPciInfo_v2, nvmlDeviceGetPciInfo_v3};
  for (int i = 0; i < 3; i++) {
    memset(&pci, 0x55, sizeof pci);
    CHECK(pcis[i](dev, &pci), NVML_SUCCESS);
    CHECK(strcmp(pci.busId, "00000001:0A:1F.0"), 0);
    CHECK(strcmp(pci.busIdLegacy, "0001:0A:1F.0"), 0);
    CHECK(pci.domain, 1); CHECK(pci.bus, 10); CHECK(pci.device, 31);
    CHECK(pci.pciDeviceId == 0x20B010DEu, 1);
  }

  /* MIG handles */
  CHECK(nvmlDeviceGetMaxMigDeviceCount(dev, &n), NVML_SUCCESS);
  CHECK(n, 7);
  CHECK(nvmlDeviceGetMigDeviceHandleByIndex(dev, 1, &mig), NVML_ERROR_NOT_FOUND);
  CHECK(nvmlDeviceGetMigDeviceHandleByIndex(other, 0, &mig), NVML_ERROR_NOT_SUPPORTED);
  CHECK(nvmlDeviceGetMigDeviceHandleByIndex(dev, 0, NULL), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetMigDeviceHandleByIndex(dev, 0, &mig), NVML_SUCCESS);
  CHECK(nvmlDeviceIsMigDeviceHandle(mig, &n), NVML_SUCCESS);
  CHECK(n, 1);
  CHECK(nvmlDeviceIsMigDeviceHandle(dev, &n), NVML_SUCCESS);
  CHECK(n, 0);
  CHECK(nvmlDeviceGetGpuInstanceId(mig, &n), NVML_SUCCESS);
  CHECK(n, 3);
  CHECK(nvmlDeviceGetGpuInstanceId(dev, &n), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(nvmlDeviceGetMinorNumber(mig, &n), NVML_ERROR_NOT_SUPPORTED);
  CHECK(nvmlDeviceGetIndex(mig, &n), NVML_ERROR_INVALID_ARGUMENT);
  CHECK(fromMig(mig, &parent), NVML_SUCCESS);
  CHECK(parent == dev, 1);
  CHECK(nvmlDeviceGetPciInfo_v3(mig, &pci), NVML_SUCCESS); /* the parent's */
  CHECK(pci.bus, 10);
  CHECK(byUuid("MIG-m", &parent), NVML_SUCCESS);
  CHECK(parent == mig, 1);
  CHECK(byUuid("GPU-b", &parent), NVML_SUCCESS);
  CHECK(parent == other, 1);
  CHECK(byUuid("GPU-nope", &parent), NVML_ERROR_NOT_FOUND);
  nvmlMemory_v2_t m2;
  memset(&m2, 0, sizeof m2);
  CHECK(memV2(dev, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  m2.version = nvmlMemory_v2;
  CHECK(memV2(mig, &m2), NVML_SUCCESS);
  CHECK(m2.total == 1000ull, 1);

  CHECK(nvmlShutdown(), NVML_SUCCESS);
  CHECK(nvmlDeviceGetUUID(dev, buf, sizeof buf), NVML_ERROR_UNINITIALIZED);
  dlclose(lib);
  return bad;
}
`;

const TOPOLOGY =
  [
    'driver\t550.54.15',
    'gpu\t0\tGPU-a\tNVIDIA A100-SXM4-40GB\t14\t1\t0a\t1f\t20B010DE\t8\t0\t7\t42949672960\t1',
    'gpu\t1\tGPU-b\tNVIDIA A100-SXM4-40GB\t14\t1\t0b\t00\t20B010DE\t8\t0\t7\t42949672960\t0',
    'mig\t0\t3\t0\tMIG-m\tNVIDIA A100-SXM4-40GB MIG 1g.5gb\t1000',
  ].join('\n') + '\n';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nvr-fake-api-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('the fake NVML honours the C API contract', async () => {
  writeFileSync(join(tmp, 'api.c'), PROGRAM);
  writeFileSync(join(tmp, 'topology.txt'), TOPOLOGY);
  mkdirSync(join(tmp, 'root/dev'), { recursive: true });
  for (const minor of [0, 1]) await execa('mknod', [join(tmp, `root/dev/nvidia${minor}`), 'c', '195', String(minor)]);
  const exe = join(tmp, 'api');
  await execa('cc', ['-std=gnu99', '-Wall', '-I', REPO, '-o', exe, join(tmp, 'api.c'), '-ldl']);
  const r = await execa(exe, [MOCK], {
    env: { NVIDIA_MOCK_TOPOLOGY: join(tmp, 'topology.txt'), NVIDIA_MOCK_ROOT: join(tmp, 'root') },
    reject: false,
  });
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(0);
});
