/*
 * One NVML enumeration shared by the addon, the Node-free probe and the mock nvidia-smi.
 * Plain C99, fixed-size buffers, no allocation: the caller owns `struct nvml_host` (about 600 KiB,
 * so allocate it on the heap).
 */
#ifndef NVR_NVML_ENUMERATE_H
#define NVR_NVML_ENUMERATE_H

#include "../include/nvml_subset.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NVML_ENUM_MAX_GPUS 256
#define NVML_ENUM_MAX_MIG 8
#define NVML_ENUM_STR 96

struct nvml_enum_error {
  int code;          /* nvmlReturn_t, or 12/13 for dlopen/dlsym failures */
  char call[64];     /* the NVML function (or "dlopen") that failed */
  char message[256]; /* nvmlErrorString / dlerror / our own words */
};

struct nvml_mig_info {
  unsigned int index; /* position on the parent (nvmlDeviceGetMigDeviceHandleByIndex) */
  int has_gpu_instance_id, has_compute_instance_id, has_name, has_memory_total;
  unsigned int gpu_instance_id, compute_instance_id;
  unsigned long long memory_total;
  char uuid[NVML_ENUM_STR];
  char name[NVML_ENUM_STR];
};

struct nvml_gpu_info {
  unsigned int index, minor;
  char uuid[NVML_ENUM_STR];
  char name[NVML_ENUM_STR];
  char pci_bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
  unsigned int domain, bus, device, pci_device_id;
  int has_brand, has_cc, has_architecture, has_memory_total, has_mig_mode, has_persistence_mode;
  int brand;
  int cc_major, cc_minor;
  unsigned int architecture;
  unsigned long long memory_total;
  unsigned int mig_current, mig_pending;
  unsigned int persistence_mode; /* nvmlEnableState_t: 1 = enabled */
  unsigned int mig_count;
  struct nvml_mig_info mig[NVML_ENUM_MAX_MIG];
};

struct nvml_host {
  int has_nvml_version, has_cuda_driver_version;
  char nvml_version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
  char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  int cuda_driver_version;
  unsigned int device_count;
  struct nvml_gpu_info devices[NVML_ENUM_MAX_GPUS];
  struct nvml_enum_error error; /* valid when nvml_enumerate returned non-zero */
};

/*
 * dlopen(library, RTLD_NOW|RTLD_LOCAL) — a path, or a bare soname such as "libnvidia-ml.so.1" which
 * the dynamic loader resolves through its cache — then init, read everything, shutdown, dlclose.
 * Returns 0 on success, else the error code (also stored in out->error). `out` is fully overwritten.
 */
int nvml_enumerate(const char *library, struct nvml_host *out);

#ifdef __cplusplus
}
#endif

#endif /* NVR_NVML_ENUMERATE_H */
