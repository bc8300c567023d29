/*
 * The functional fake libnvidia-ml (SONAME libnvidia-ml.so.1). See native/README.md for the contract.
 *
 * Topology: $NVIDIA_MOCK_TOPOLOGY (a file in the text format), else the text written by `mock-driver` into this
 * library's own copy of `nvmock_topology` after the marker line. A GPU is visible only if <root>/dev/nvidia<minor>
 * exists; <root> is $NVIDIA_MOCK_ROOT, else this library's path up to its last /usr/lib or /lib component.
 *
 * Handles are pointers into static tables and are checked on every call (never trusted); every pointer argument
 * is checked; short buffers get INSUFFICIENT_SIZE; nothing works before init; init is reference-counted and the
 * topology is re-read whenever the count goes from 0 to 1.
 *
 * -DNVMOCK_MINIMAL leaves out every optional symbol (MIG, architecture, memory, compute capability, brand,
 * CUDA and NVML versions) to test callers against old or partial drivers.
 */
#define _GNU_SOURCE
#include "../include/nvml_subset.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXPORT __attribute__((visibility("default")))
/* Non-static, non-const and exported: the compiler must read it at run time, so a patched copy of this file
 * carries its own topology. The initializer puts it in .data, i.e. in the file. The initializer must be the
 * only place the full marker line appears in the binary (mock-driver patches the first occurrence), so the
 * code below never spells it out: see has_marker. */
EXPORT char nvmock_topology[262144] = "NVMOCK-TOPOLOGY-V1\n";
#define MARKER_LEN 19

static int has_marker(const char *p) {
  return strncmp(p, "NVMOCK-TOPOLOGY-V", MARKER_LEN - 2) == 0 && p[MARKER_LEN - 2] == '1' && p[MARKER_LEN - 1] == '\n';
}

#define MAX_GPUS 256
#define MAX_MIG_PER_GPU 16
#define MAX_MIGS 2048
#define MAX_FAILS 64
#define MAX_FIELDS 16
#define MAX_TOPOLOGY_FILE (4u * 1024u * 1024u)
#define STR 96

enum kind { KIND_GPU = 1, KIND_MIG = 2 };

struct nvmlDevice_st {
  enum kind kind;
  char uuid[STR];
  char name[STR];
  unsigned long long memory;
  /* GPU */
  unsigned int minor, domain, bus, device, pci_device_id, architecture, mig_mode;
  int has_persistence; /* a `persistence` record named it; without one, persistence mode is NOT_SUPPORTED */
  unsigned int persistence;
  int brand, cc_major, cc_minor;
  int visible;
  unsigned int index; /* NVML index among visible GPUs */
  unsigned int n_mig;
  unsigned int mig[MAX_MIG_PER_GPU]; /* indices into migs[] */
  /* MIG */
  unsigned int parent; /* index into gpus[] */
  unsigned int gi, ci;
};

static struct nvmlDevice_st gpus[MAX_GPUS];
static unsigned int n_gpus;
static struct nvmlDevice_st migs[MAX_MIGS];
static unsigned int n_migs;
static struct nvmlDevice_st *visible[MAX_GPUS];
static unsigned int n_visible;
static struct {
  char name[64];
  nvmlReturn_t code;
} fails[MAX_FAILS];
static unsigned int n_fails;
static char driver_version[80], nvml_version[80];
static int have_nvml_version, have_cuda, cuda_version;
static unsigned int init_count;

/* ---------- parsing ---------- */

static int parse_dec(const char *s, unsigned long long max, unsigned long long *out) {
  unsigned long long v = 0;
  if (*s == '\0') return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    unsigned d = (unsigned)(*s - '0');
    if (v > (ULLONG_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (v > max) return 0;
  *out = v;
  return 1;
}

static int parse_u32_dec(const char *s, unsigned int max, unsigned int *out) {
  unsigned long long v;
  if (!parse_dec(s, max, &v)) return 0;
  *out = (unsigned int)v;
  return 1;
}

static int parse_hex(const char *s, unsigned int max, unsigned int *out) {
  unsigned long long v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  if (*s == '\0' || strlen(s) > 8) return 0;
  for (; *s; s++) {
    unsigned d;
    if (*s >= '0' && *s <= '9') d = (unsigned)(*s - '0');
    else if (*s >= 'a' && *s <= 'f') d = (unsigned)(*s - 'a' + 10);
    else if (*s >= 'A' && *s <= 'F') d = (unsigned)(*s - 'A' + 10);
    else return 0;
    v = v * 16 + d;
  }
  if (v > max) return 0;
  *out = (unsigned int)v;
  return 1;
}

static int copy_field(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);
  if (n == 0 || n >= size) return 0;
  memcpy(dst, src, n + 1);
  return 1;
}

static int parse_gpu(char **f, unsigned int nf) {
  struct nvmlDevice_st *g;
  unsigned int v;
  if (nf != 14 || n_gpus >= MAX_GPUS) return 0;
  g = &gpus[n_gpus];
  memset(g, 0, sizeof *g);
  g->kind = KIND_GPU;
  if (!parse_u32_dec(f[1], 254, &g->minor)) return 0;
  if (!copy_field(g->uuid, sizeof g->uuid, f[2]) || !copy_field(g->name, sizeof g->name, f[3])) return 0;
  if (!parse_u32_dec(f[4], 1000, &v)) return 0;
  g->brand = (int)v;
  if (!parse_hex(f[5], 0xffffffffu, &g->domain) || !parse_hex(f[6], 0xff, &g->bus) ||
      !parse_hex(f[7], 0x1f, &g->device) || !parse_hex(f[8], 0xffffffffu, &g->pci_device_id))
    return 0;
  if (!parse_u32_dec(f[9], 99, &v)) return 0;
  g->cc_major = (int)v;
  if (!parse_u32_dec(f[10], 99, &v)) return 0;
  g->cc_minor = (int)v;
  if (!parse_u32_dec(f[11], 0xffffffffu, &g->architecture)) return 0;
  if (!parse_dec(f[12], ULLONG_MAX, &g->memory)) return 0;
  if (!parse_u32_dec(f[13], 1, &g->mig_mode)) return 0;
  for (unsigned int i = 0; i < n_gpus; i++)
    if (gpus[i].minor == g->minor) return 0; /* two GPUs cannot share a device node */
  n_gpus++;
  return 1;
}

static int parse_mig(char **f, unsigned int nf) {
  struct nvmlDevice_st *m;
  unsigned int parent;
  if (nf != 7 || n_migs >= MAX_MIGS) return 0;
  if (!parse_u32_dec(f[1], MAX_GPUS, &parent) || parent >= n_gpus) return 0;
  if (gpus[parent].n_mig >= MAX_MIG_PER_GPU) return 0;
  m = &migs[n_migs];
  memset(m, 0, sizeof *m);
  m->kind = KIND_MIG;
  m->parent = parent;
  if (!parse_u32_dec(f[2], 0xffffu, &m->gi) || !parse_u32_dec(f[3], 0xffffu, &m->ci)) return 0;
  if (!copy_field(m->uuid, sizeof m->uuid, f[4]) || !copy_field(m->name, sizeof m->name, f[5])) return 0;
  if (!parse_dec(f[6], ULLONG_MAX, &m->memory)) return 0;
  gpus[parent].mig[gpus[parent].n_mig++] = n_migs++;
  return 1;
}

/* `persistence <gpu ordinal> <0|1>`: the GPU's persistence mode (nvidia-smi -pm), for nvidia-ctk doctor. */
static int parse_persistence(char **f, unsigned int nf) {
  unsigned int ordinal, mode;
  if (nf != 3 || !parse_u32_dec(f[1], MAX_GPUS, &ordinal) || ordinal >= n_gpus || !parse_u32_dec(f[2], 1, &mode)) return 0;
  gpus[ordinal].has_persistence = 1;
  gpus[ordinal].persistence = mode;
  return 1;
}

static int parse_line(char *line) {
  char *f[MAX_FIELDS] = {0};
  unsigned int nf = 0;
  size_t len = strlen(line);
  unsigned int v = 0;
  if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
  if (len == 0 || line[0] == '#') return 1;
  for (char *p = line;;) {
    if (nf == MAX_FIELDS) return 0;
    f[nf++] = p;
    char *tab = strchr(p, '\t');
    if (tab == NULL) break;
    *tab = '\0';
    p = tab + 1;
  }
  if (strcmp(f[0], "driver") == 0) return nf == 2 && copy_field(driver_version, sizeof driver_version, f[1]);
  if (strcmp(f[0], "nvml") == 0) {
    have_nvml_version = nf == 2 && copy_field(nvml_version, sizeof nvml_version, f[1]);
    return have_nvml_version;
  }
  if (strcmp(f[0], "cuda") == 0) {
    have_cuda = nf == 2 && parse_u32_dec(f[1], INT_MAX, &v);
    cuda_version = (int)v;
    return have_cuda;
  }
  if (strcmp(f[0], "gpu") == 0) return parse_gpu(f, nf);
  if (strcmp(f[0], "mig") == 0) return parse_mig(f, nf);
  if (strcmp(f[0], "persistence") == 0) return parse_persistence(f, nf);
  if (strcmp(f[0], "fail") == 0) {
    if (nf != 3 || n_fails >= MAX_FAILS || !copy_field(fails[n_fails].name, sizeof fails[n_fails].name, f[1]) ||
        !parse_u32_dec(f[2], INT_MAX, &v))
      return 0;
    fails[n_fails++].code = (nvmlReturn_t)v;
    return 1;
  }
  return 1; /* unknown record types are ignored: newer mock-drivers may add some */
}

static void reset_state(void) {
  n_gpus = n_migs = n_visible = n_fails = 0;
  driver_version[0] = nvml_version[0] = '\0';
  have_nvml_version = have_cuda = 0;
  cuda_version = 0;
}

/* Parses a private, NUL-terminated copy of the text. */
static nvmlReturn_t parse_topology(char *text) {
  if (has_marker(text)) text += MARKER_LEN;
  if (text[strspn(text, " \t\r\n")] == '\0') return NVML_ERROR_DRIVER_NOT_LOADED; /* nothing written */
  for (char *line = text; line != NULL;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL) *nl = '\0';
    if (!parse_line(line)) return NVML_ERROR_UNKNOWN;
    line = nl != NULL ? nl + 1 : NULL;
  }
  if (driver_version[0] == '\0') return NVML_ERROR_UNKNOWN;
  return NVML_SUCCESS;
}

static char *read_file(const char *path, nvmlReturn_t *rc) {
  FILE *fp = fopen(path, "rb");
  char *buf;
  size_t n;
  if (fp == NULL) {
    *rc = NVML_ERROR_DRIVER_NOT_LOADED;
    return NULL;
  }
  buf = malloc(MAX_TOPOLOGY_FILE + 1);
  if (buf == NULL) {
    fclose(fp);
    *rc = NVML_ERROR_MEMORY;
    return NULL;
  }
  n = fread(buf, 1, MAX_TOPOLOGY_FILE + 1, fp);
  fclose(fp);
  if (n > MAX_TOPOLOGY_FILE || memchr(buf, '\0', n) != NULL) { /* too big, or binary garbage */
    free(buf);
    *rc = NVML_ERROR_UNKNOWN;
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

static char *embedded_copy(nvmlReturn_t *rc) {
  size_t n = strnlen(nvmock_topology, sizeof nvmock_topology);
  char *buf;
  if (n == sizeof nvmock_topology || !has_marker(nvmock_topology)) {
    *rc = NVML_ERROR_DRIVER_NOT_LOADED; /* not NUL-terminated or no marker: no usable topology */
    return NULL;
  }
  buf = malloc(n + 1);
  if (buf == NULL) {
    *rc = NVML_ERROR_MEMORY;
    return NULL;
  }
  memcpy(buf, nvmock_topology, n + 1);
  return buf;
}

/* ---------- device visibility ---------- */

static int is_component(const char *path, size_t pos, const char *name) {
  size_t n = strlen(name);
  return path[pos] == '/' && strncmp(path + pos + 1, name, n) == 0 &&
         (path[pos + 1 + n] == '/' || path[pos + 1 + n] == '\0');
}

/* The driver root: this library's own path up to its last /usr/lib or /lib component ("" means "/"). */
static void find_root(char *root, size_t size) {
  const char *env = getenv("NVIDIA_MOCK_ROOT");
  Dl_info info;
  size_t end = 0;
  root[0] = '\0';
  if (env != NULL && env[0] != '\0') {
    snprintf(root, size, "%s", env);
    return;
  }
  if (dladdr((void *)nvmock_topology, &info) == 0 || info.dli_fname == NULL) return;
  const char *path = info.dli_fname;
  for (size_t i = 0; path[i]; i++) {
    if (is_component(path, i, "lib")) end = (i >= 4 && is_component(path, i - 4, "usr")) ? i - 4 : i;
  }
  if (end >= size) return;
  memcpy(root, path, end);
  root[end] = '\0';
}

static void compute_visibility(void) {
  char root[PATH_MAX], node[PATH_MAX + 32];
  struct stat st;
  find_root(root, sizeof root);
  n_visible = 0;
  for (unsigned int i = 0; i < n_gpus; i++) {
    int n = snprintf(node, sizeof node, "%s/dev/nvidia%u", root, gpus[i].minor);
    gpus[i].visible = n > 0 && (size_t)n < sizeof node && stat(node, &st) == 0;
    if (gpus[i].visible) {
      gpus[i].index = n_visible;
      visible[n_visible++] = &gpus[i];
    }
  }
}

/* ---------- helpers for the API ---------- */

/* `fail` records name a function, versioned ("nvmlDeviceGetCount_v2") or not ("nvmlDeviceGetCount"). */
static nvmlReturn_t failure_for(const char *fn) {
  size_t base = strlen(fn);
  const char *v = strrchr(fn, '_');
  if (v != NULL && v[1] == 'v' && v[2] != '\0' && strspn(v + 2, "0123456789") == strlen(v + 2)) base = (size_t)(v - fn);
  for (unsigned int i = 0; i < n_fails; i++) {
    if (strcmp(fails[i].name, fn) == 0) return fails[i].code;
    if (strlen(fails[i].name) == base && strncmp(fails[i].name, fn, base) == 0) return fails[i].code;
  }
  return NVML_SUCCESS;
}

#define ENTER(fn)                                  \
  do {                                             \
    if (init_count == 0) return NVML_ERROR_UNINITIALIZED; \
    nvmlReturn_t f_ = failure_for(fn);             \
    if (f_ != NVML_SUCCESS) return f_;             \
  } while (0)

static struct nvmlDevice_st *in_table(nvmlDevice_t d, struct nvmlDevice_st *table, unsigned int n) {
  uintptr_t p = (uintptr_t)d, b = (uintptr_t)table;
  if (d == NULL || p < b || p >= b + (uintptr_t)n * sizeof *table || (p - b) % sizeof *table != 0) return NULL;
  return d;
}

static struct nvmlDevice_st *as_gpu(nvmlDevice_t d) {
  struct nvmlDevice_st *g = in_table(d, gpus, n_gpus);
  return g != NULL && g->visible ? g : NULL;
}

static struct nvmlDevice_st *as_mig(nvmlDevice_t d) {
  struct nvmlDevice_st *m = in_table(d, migs, n_migs);
  if (m == NULL) return NULL;
  const struct nvmlDevice_st *g = &gpus[m->parent];
  return g->visible && g->mig_mode == NVML_DEVICE_MIG_ENABLE ? m : NULL;
}

static struct nvmlDevice_st *as_any(nvmlDevice_t d) {
  struct nvmlDevice_st *x = as_gpu(d);
  return x != NULL ? x : as_mig(d);
}

/* The physical GPU behind a GPU or MIG handle (PCI, brand, architecture are the parent's). */
static struct nvmlDevice_st *physical(nvmlDevice_t d) {
  struct nvmlDevice_st *x = as_gpu(d);
  if (x != NULL) return x;
  x = as_mig(d);
  return x != NULL ? &gpus[x->parent] : NULL;
}

static nvmlReturn_t copy_out(char *dst, unsigned int length, const char *src) {
  size_t n = strlen(src);
  if (dst == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if ((size_t)length < n + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, n + 1);
  return NVML_SUCCESS;
}

/* ---------- init / shutdown / errors ---------- */

static nvmlReturn_t do_init(const char *fn) {
  nvmlReturn_t rc = NVML_SUCCESS;
  if (init_count > 0) {
    rc = failure_for(fn);
    if (rc == NVML_SUCCESS) init_count++;
    return rc;
  }
  reset_state();
  const char *file = getenv("NVIDIA_MOCK_TOPOLOGY");
  char *text = (file != NULL && file[0] != '\0') ? read_file(file, &rc) : embedded_copy(&rc);
  if (text == NULL) return rc;
  rc = parse_topology(text);
  free(text);
  if (rc == NVML_SUCCESS) rc = failure_for(fn);
  if (rc != NVML_SUCCESS) {
    reset_state();
    return rc;
  }
  compute_visibility();
  init_count = 1;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init("nvmlInit_v2"); }
EXPORT nvmlReturn_t nvmlInit(void) { return do_init("nvmlInit"); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;
  return do_init("nvmlInitWithFlags");
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  nvmlReturn_t rc = failure_for("nvmlShutdown");
  if (--init_count == 0) reset_state();
  return rc;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Ran out of critical resources, other than memory";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not Ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    default: return "Unknown Error";
  }
}

/* ---------- system ---------- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  ENTER("nvmlSystemGetDriverVersion");
  return copy_out(version, length, driver_version);
}

/* ---------- devices ---------- */

static nvmlReturn_t get_count(const char *fn, unsigned int *count) {
  ENTER(fn);
  if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *count = n_visible;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) { return get_count("nvmlDeviceGetCount_v2", c); }
EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *c) { return get_count("nvmlDeviceGetCount", c); }

static nvmlReturn_t handle_by_index(const char *fn, unsigned int index, nvmlDevice_t *device) {
  ENTER(fn);
  if (device == NULL || index >= n_visible) return NVML_ERROR_INVALID_ARGUMENT;
  *device = visible[index];
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
  return handle_by_index("nvmlDeviceGetHandleByIndex_v2", i, d);
}
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d) {
  return handle_by_index("nvmlDeviceGetHandleByIndex", i, d);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
  ENTER("nvmlDeviceGetHandleByUUID");
  if (uuid == NULL || device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned int i = 0; i < n_visible; i++) {
    struct nvmlDevice_st *g = visible[i];
    if (strcmp(g->uuid, uuid) == 0) {
      *device = g;
      return NVML_SUCCESS;
    }
    for (unsigned int j = 0; g->mig_mode == NVML_DEVICE_MIG_ENABLE && j < g->n_mig; j++) {
      if (strcmp(migs[g->mig[j]].uuid, uuid) == 0) {
        *device = &migs[g->mig[j]];
        return NVML_SUCCESS;
      }
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
  ENTER("nvmlDeviceGetIndex");
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL || index == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *index = g->index;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor) {
  ENTER("nvmlDeviceGetMinorNumber");
  if (minor == NULL || as_any(device) == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL) return NVML_ERROR_NOT_SUPPORTED; /* MIG devices have no /dev/nvidiaN of their own */
  *minor = g->minor;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
  ENTER("nvmlDeviceGetUUID");
  struct nvmlDevice_st *x = as_any(device);
  if (x == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  return copy_out(uuid, length, x->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
  ENTER("nvmlDeviceGetName");
  struct nvmlDevice_st *x = as_any(device);
  if (x == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  return copy_out(name, length, x->name);
}

/* All three versions fill the full 68-byte v3 layout: callers (libnvidia-container included) pass that struct. */
static nvmlReturn_t pci_info(const char *fn, nvmlDevice_t device, nvmlPciInfo_t *pci) {
  ENTER(fn);
  struct nvmlDevice_st *g = physical(device);
  if (g == NULL || pci == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  memset(pci, 0, sizeof *pci);
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT, g->domain & 0xffffu, g->bus,
           g->device);
  snprintf(pci->busId, sizeof pci->busId, NVML_DEVICE_PCI_BUS_ID_FMT, g->domain, g->bus, g->device);
  pci->domain = g->domain;
  pci->bus = g->bus;
  pci->device = g->device;
  pci->pciDeviceId = g->pci_device_id;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) {
  return pci_info("nvmlDeviceGetPciInfo_v3", d, p);
}
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t *p) {
  return pci_info("nvmlDeviceGetPciInfo_v2", d, p);
}
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t d, nvmlPciInfo_t *p) {
  return pci_info("nvmlDeviceGetPciInfo", d, p);
}

#ifndef NVMOCK_MINIMAL

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
  ENTER("nvmlSystemGetNVMLVersion");
  if (!have_nvml_version) return version == NULL ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_NOT_SUPPORTED;
  return copy_out(version, length, nvml_version);
}

static nvmlReturn_t cuda_driver_version(const char *fn, int *version) {
  ENTER(fn);
  if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (!have_cuda) return NVML_ERROR_NOT_SUPPORTED;
  *version = cuda_version;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
  return cuda_driver_version("nvmlSystemGetCudaDriverVersion", v);
}
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
  return cuda_driver_version("nvmlSystemGetCudaDriverVersion_v2", v);
}

EXPORT nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type) {
  ENTER("nvmlDeviceGetBrand");
  struct nvmlDevice_st *g = physical(device);
  if (g == NULL || type == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *type = (nvmlBrandType_t)g->brand;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
  ENTER("nvmlDeviceGetCudaComputeCapability");
  struct nvmlDevice_st *g = physical(device);
  if (g == NULL || major == NULL || minor == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *major = g->cc_major;
  *minor = g->cc_minor;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch) {
  ENTER("nvmlDeviceGetArchitecture");
  struct nvmlDevice_st *g = physical(device);
  if (g == NULL || arch == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *arch = g->architecture;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  ENTER("nvmlDeviceGetMemoryInfo");
  struct nvmlDevice_st *x = as_any(device);
  if (x == NULL || memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  memory->total = memory->free = x->memory;
  memory->used = 0;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
  ENTER("nvmlDeviceGetMemoryInfo_v2");
  struct nvmlDevice_st *x = as_any(device);
  if (x == NULL || memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  memory->total = memory->free = x->memory;
  memory->reserved = memory->used = 0;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
  ENTER("nvmlDeviceGetMigMode");
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL || current == NULL || pending == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *current = *pending = g->mig_mode;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
  ENTER("nvmlDeviceGetMaxMigDeviceCount");
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL || count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  /* Like an A100/H100: 7 slots when MIG is on (more only if the topology asks for more), 0 when off. */
  *count = g->mig_mode == NVML_DEVICE_MIG_ENABLE ? (g->n_mig > 7 ? g->n_mig : 7) : 0;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig) {
  ENTER("nvmlDeviceGetMigDeviceHandleByIndex");
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL || mig == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (g->mig_mode != NVML_DEVICE_MIG_ENABLE) return NVML_ERROR_NOT_SUPPORTED;
  if (index >= g->n_mig) return NVML_ERROR_NOT_FOUND;
  *mig = &migs[g->mig[index]];
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
  ENTER("nvmlDeviceGetGpuInstanceId");
  struct nvmlDevice_st *m = as_mig(device);
  if (m == NULL || id == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *id = m->gi;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
  ENTER("nvmlDeviceGetComputeInstanceId");
  struct nvmlDevice_st *m = as_mig(device);
  if (m == NULL || id == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *id = m->ci;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig_device, nvmlDevice_t *device) {
  ENTER("nvmlDeviceGetDeviceHandleFromMigDeviceHandle");
  struct nvmlDevice_st *m = as_mig(mig_device);
  if (m == NULL || device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &gpus[m->parent];
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig) {
  ENTER("nvmlDeviceIsMigDeviceHandle");
  struct nvmlDevice_st *x = as_any(device);
  if (x == NULL || is_mig == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *is_mig = x->kind == KIND_MIG;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode) {
  ENTER("nvmlDeviceGetPersistenceMode");
  struct nvmlDevice_st *g = as_gpu(device);
  if (g == NULL || mode == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (!g->has_persistence) return NVML_ERROR_NOT_SUPPORTED;
  *mode = g->persistence ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return NVML_SUCCESS;
}

#endif /* NVMOCK_MINIMAL */
