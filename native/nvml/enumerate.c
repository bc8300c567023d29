/*
 * NVML enumeration (see enumerate.h and native/README.md). Every call's result is checked; every string is
 * copied with an explicit bound and NUL-terminated; the library is always shut down and closed.
 */
#include "enumerate.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct nvml_api {
  nvmlInit_v2_fn init;
  nvmlShutdown_fn shutdown;
  nvmlErrorString_fn error_string;
  nvmlSystemGetDriverVersion_fn driver_version;
  nvmlSystemGetNVMLVersion_fn nvml_version;
  nvmlSystemGetCudaDriverVersion_fn cuda_driver_version;
  nvmlDeviceGetCount_v2_fn count;
  nvmlDeviceGetHandleByIndex_v2_fn handle_by_index;
  nvmlDeviceGetMinorNumber_fn minor;
  nvmlDeviceGetUUID_fn uuid;
  nvmlDeviceGetName_fn name;
  nvmlDeviceGetPciInfo_fn pci_info;
  const char *pci_info_name; /* which PciInfo symbol was found, for error reports */
  nvmlDeviceGetBrand_fn brand;
  nvmlDeviceGetCudaComputeCapability_fn cc;
  nvmlDeviceGetArchitecture_fn architecture;
  nvmlDeviceGetMemoryInfo_fn memory;
  nvmlDeviceGetMigMode_fn mig_mode;
  nvmlDeviceGetMaxMigDeviceCount_fn max_mig;
  nvmlDeviceGetMigDeviceHandleByIndex_fn mig_by_index;
  nvmlDeviceGetGpuInstanceId_fn gi_id;
  nvmlDeviceGetComputeInstanceId_fn ci_id;
  nvmlDeviceGetPersistenceMode_fn persistence_mode;
};

static void copy_str(char *dst, size_t size, const char *src) {
  if (size == 0) return;
  if (src == NULL) src = "";
  size_t n = strlen(src);
  if (n >= size) n = size - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static int set_error(struct nvml_host *out, int code, const char *call, const char *message) {
  out->error.code = code;
  copy_str(out->error.call, sizeof out->error.call, call);
  copy_str(out->error.message, sizeof out->error.message, message);
  return code;
}

/* An NVML call failed: report it with NVML's own words when the library can give them. */
static int nvml_error(struct nvml_host *out, const struct nvml_api *api, nvmlReturn_t rc, const char *call) {
  const char *msg = NULL;
  if (api->error_string != NULL) msg = api->error_string(rc);
  if (msg == NULL || msg[0] == '\0') msg = "NVML call failed";
  return set_error(out, (int)rc, call, msg);
}

/* Optional data: these results mean "this library/GPU cannot tell", so the field is left absent. */
static int absent(nvmlReturn_t rc) {
  return rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_FUNCTION_NOT_FOUND || rc == NVML_ERROR_NO_PERMISSION;
}

/* dlsym returns void*; converting through a union keeps C99 pedantic about object→function pointers quiet. */
static void (*lookup(void *lib, const char *name))(void) {
  union {
    void *obj;
    void (*fn)(void);
  } u;
  u.obj = dlsym(lib, name);
  return u.fn;
}

#define REQUIRE(field, type, sym)                                                         \
  do {                                                                                     \
    api->field = (type)lookup(lib, sym);                                                   \
    if (api->field == NULL)                                                                \
      return set_error(out, NVML_ERROR_FUNCTION_NOT_FOUND, sym, "required NVML symbol not found"); \
  } while (0)
#define OPTIONAL(field, type, sym) (api->field = (type)lookup(lib, sym))

static int resolve(void *lib, struct nvml_api *api, struct nvml_host *out) {
  memset(api, 0, sizeof *api);
  /* nvmlErrorString first so that later failures can be described. */
  OPTIONAL(error_string, nvmlErrorString_fn, "nvmlErrorString");
  REQUIRE(init, nvmlInit_v2_fn, "nvmlInit_v2");
  REQUIRE(shutdown, nvmlShutdown_fn, "nvmlShutdown");
  REQUIRE(error_string, nvmlErrorString_fn, "nvmlErrorString");
  REQUIRE(driver_version, nvmlSystemGetDriverVersion_fn, "nvmlSystemGetDriverVersion");
  REQUIRE(count, nvmlDeviceGetCount_v2_fn, "nvmlDeviceGetCount_v2");
  REQUIRE(handle_by_index, nvmlDeviceGetHandleByIndex_v2_fn, "nvmlDeviceGetHandleByIndex_v2");
  REQUIRE(minor, nvmlDeviceGetMinorNumber_fn, "nvmlDeviceGetMinorNumber");
  REQUIRE(uuid, nvmlDeviceGetUUID_fn, "nvmlDeviceGetUUID");
  REQUIRE(name, nvmlDeviceGetName_fn, "nvmlDeviceGetName");
  api->pci_info_name = "nvmlDeviceGetPciInfo_v3";
  OPTIONAL(pci_info, nvmlDeviceGetPciInfo_fn, "nvmlDeviceGetPciInfo_v3");
  if (api->pci_info == NULL) {
    api->pci_info_name = "nvmlDeviceGetPciInfo";
    OPTIONAL(pci_info, nvmlDeviceGetPciInfo_fn, "nvmlDeviceGetPciInfo");
  }
  if (api->pci_info == NULL)
    return set_error(out, NVML_ERROR_FUNCTION_NOT_FOUND, "nvmlDeviceGetPciInfo_v3", "required NVML symbol not found");
  OPTIONAL(nvml_version, nvmlSystemGetNVMLVersion_fn, "nvmlSystemGetNVMLVersion");
  OPTIONAL(cuda_driver_version, nvmlSystemGetCudaDriverVersion_fn, "nvmlSystemGetCudaDriverVersion");
  OPTIONAL(brand, nvmlDeviceGetBrand_fn, "nvmlDeviceGetBrand");
  OPTIONAL(cc, nvmlDeviceGetCudaComputeCapability_fn, "nvmlDeviceGetCudaComputeCapability");
  OPTIONAL(architecture, nvmlDeviceGetArchitecture_fn, "nvmlDeviceGetArchitecture");
  OPTIONAL(memory, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo");
  OPTIONAL(mig_mode, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode");
  OPTIONAL(max_mig, nvmlDeviceGetMaxMigDeviceCount_fn, "nvmlDeviceGetMaxMigDeviceCount");
  OPTIONAL(mig_by_index, nvmlDeviceGetMigDeviceHandleByIndex_fn, "nvmlDeviceGetMigDeviceHandleByIndex");
  OPTIONAL(gi_id, nvmlDeviceGetGpuInstanceId_fn, "nvmlDeviceGetGpuInstanceId");
  OPTIONAL(ci_id, nvmlDeviceGetComputeInstanceId_fn, "nvmlDeviceGetComputeInstanceId");
  OPTIONAL(persistence_mode, nvmlDeviceGetPersistenceMode_fn, "nvmlDeviceGetPersistenceMode");
  return 0;
}

/* Call an NVML function; on a hard failure record it and leave the calling function. */
#define CALL(name, expr)                                 \
  do {                                                   \
    nvmlReturn_t rc_ = (expr);                           \
    if (rc_ != NVML_SUCCESS) return nvml_error(out, api, rc_, name); \
  } while (0)
/* Same for optional data: `absent` results leave has_flag at 0. */
#define CALL_OPT(name, fnptr, has_flag, expr)            \
  do {                                                   \
    if ((fnptr) != NULL) {                               \
      nvmlReturn_t rc_ = (expr);                         \
      if (rc_ == NVML_SUCCESS) (has_flag) = 1;           \
      else if (!absent(rc_)) return nvml_error(out, api, rc_, name); \
    }                                                    \
  } while (0)

static int read_mig(const struct nvml_api *api, nvmlDevice_t gpu, struct nvml_gpu_info *g, struct nvml_host *out) {
  unsigned int max = 0;
  if (api->max_mig == NULL || api->mig_by_index == NULL) return 0;
  nvmlReturn_t rc = api->max_mig(gpu, &max);
  if (absent(rc)) return 0;
  if (rc != NVML_SUCCESS) return nvml_error(out, api, rc, "nvmlDeviceGetMaxMigDeviceCount");
  for (unsigned int j = 0; j < max; j++) {
    nvmlDevice_t mig = NULL;
    rc = api->mig_by_index(gpu, j, &mig);
    if (rc == NVML_ERROR_NOT_FOUND) continue; /* empty slot */
    if (rc != NVML_SUCCESS) return nvml_error(out, api, rc, "nvmlDeviceGetMigDeviceHandleByIndex");
    if (g->mig_count >= NVML_ENUM_MAX_MIG)
      return set_error(out, NVML_ERROR_INSUFFICIENT_SIZE, "nvmlDeviceGetMigDeviceHandleByIndex",
                       "more MIG devices on one GPU than this program supports (8)");
    struct nvml_mig_info *m = &g->mig[g->mig_count];
    memset(m, 0, sizeof *m);
    m->index = j;
    CALL("nvmlDeviceGetUUID", api->uuid(mig, m->uuid, sizeof m->uuid));
    m->uuid[sizeof m->uuid - 1] = '\0';
    CALL_OPT("nvmlDeviceGetName", api->name, m->has_name, api->name(mig, m->name, sizeof m->name));
    m->name[sizeof m->name - 1] = '\0';
    CALL_OPT("nvmlDeviceGetGpuInstanceId", api->gi_id, m->has_gpu_instance_id, api->gi_id(mig, &m->gpu_instance_id));
    CALL_OPT("nvmlDeviceGetComputeInstanceId", api->ci_id, m->has_compute_instance_id,
             api->ci_id(mig, &m->compute_instance_id));
    nvmlMemory_t mem;
    memset(&mem, 0, sizeof mem);
    CALL_OPT("nvmlDeviceGetMemoryInfo", api->memory, m->has_memory_total, api->memory(mig, &mem));
    m->memory_total = mem.total;
    g->mig_count++;
  }
  return 0;
}

static int read_gpu(const struct nvml_api *api, unsigned int i, struct nvml_gpu_info *g, struct nvml_host *out) {
  nvmlDevice_t dev = NULL;
  memset(g, 0, sizeof *g);
  g->index = i;
  CALL("nvmlDeviceGetHandleByIndex_v2", api->handle_by_index(i, &dev));
  CALL("nvmlDeviceGetMinorNumber", api->minor(dev, &g->minor));
  CALL("nvmlDeviceGetUUID", api->uuid(dev, g->uuid, sizeof g->uuid));
  g->uuid[sizeof g->uuid - 1] = '\0';
  CALL("nvmlDeviceGetName", api->name(dev, g->name, sizeof g->name));
  g->name[sizeof g->name - 1] = '\0';

  nvmlPciInfo_t pci;
  memset(&pci, 0, sizeof pci);
  CALL(api->pci_info_name, api->pci_info(dev, &pci));
  pci.busId[sizeof pci.busId - 1] = '\0';
  copy_str(g->pci_bus_id, sizeof g->pci_bus_id, pci.busId);
  g->domain = pci.domain;
  g->bus = pci.bus;
  g->device = pci.device;
  g->pci_device_id = pci.pciDeviceId;

  nvmlBrandType_t brand = NVML_BRAND_UNKNOWN;
  CALL_OPT("nvmlDeviceGetBrand", api->brand, g->has_brand, api->brand(dev, &brand));
  g->brand = (int)brand;
  CALL_OPT("nvmlDeviceGetCudaComputeCapability", api->cc, g->has_cc, api->cc(dev, &g->cc_major, &g->cc_minor));
  CALL_OPT("nvmlDeviceGetArchitecture", api->architecture, g->has_architecture, api->architecture(dev, &g->architecture));
  nvmlMemory_t mem;
  memset(&mem, 0, sizeof mem);
  CALL_OPT("nvmlDeviceGetMemoryInfo", api->memory, g->has_memory_total, api->memory(dev, &mem));
  g->memory_total = mem.total;
  CALL_OPT("nvmlDeviceGetMigMode", api->mig_mode, g->has_mig_mode, api->mig_mode(dev, &g->mig_current, &g->mig_pending));
  /* Persistence mode off makes every NVML init (each GPU container) pay the driver's start-up (nvidia-ctk doctor). */
  nvmlEnableState_t persistence = NVML_FEATURE_DISABLED;
  CALL_OPT("nvmlDeviceGetPersistenceMode", api->persistence_mode, g->has_persistence_mode, api->persistence_mode(dev, &persistence));
  g->persistence_mode = (unsigned int)persistence;
  /* Only a GPU in MIG mode has MIG devices; asking others can fail in driver-specific ways. */
  if (g->has_mig_mode && g->mig_current == NVML_DEVICE_MIG_ENABLE) return read_mig(api, dev, g, out);
  return 0;
}

static int read_host(const struct nvml_api *api, struct nvml_host *out) {
  CALL("nvmlSystemGetDriverVersion", api->driver_version(out->driver_version, sizeof out->driver_version));
  out->driver_version[sizeof out->driver_version - 1] = '\0';
  CALL_OPT("nvmlSystemGetNVMLVersion", api->nvml_version, out->has_nvml_version,
           api->nvml_version(out->nvml_version, sizeof out->nvml_version));
  out->nvml_version[sizeof out->nvml_version - 1] = '\0';
  CALL_OPT("nvmlSystemGetCudaDriverVersion", api->cuda_driver_version, out->has_cuda_driver_version,
           api->cuda_driver_version(&out->cuda_driver_version));

  unsigned int count = 0;
  CALL("nvmlDeviceGetCount_v2", api->count(&count));
  if (count > NVML_ENUM_MAX_GPUS)
    return set_error(out, NVML_ERROR_INSUFFICIENT_SIZE, "nvmlDeviceGetCount_v2",
                     "more GPUs than this program supports (256)");
  for (unsigned int i = 0; i < count; i++) {
    int rc = read_gpu(api, i, &out->devices[i], out);
    if (rc != 0) return rc;
    out->device_count = i + 1;
  }
  return 0;
}

int nvml_enumerate(const char *library, struct nvml_host *out) {
  struct nvml_api api;
  memset(out, 0, sizeof *out);
  if (library == NULL || library[0] == '\0')
    return set_error(out, NVML_ERROR_LIBRARY_NOT_FOUND, "dlopen", "empty library path");

  dlerror();
  void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *why = dlerror();
    return set_error(out, NVML_ERROR_LIBRARY_NOT_FOUND, "dlopen", why != NULL ? why : "dlopen failed");
  }
  int rc = resolve(lib, &api, out);
  if (rc == 0) {
    nvmlReturn_t init = api.init();
    if (init != NVML_SUCCESS) {
      rc = nvml_error(out, &api, init, "nvmlInit_v2");
    } else {
      rc = read_host(&api, out);
      api.shutdown(); /* its result cannot change what we already read */
    }
  }
  dlclose(lib);
  if (rc != 0) out->device_count = 0; /* never hand out half a host */
  return rc;
}
