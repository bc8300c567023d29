/*
 * nvml-probe <libnvidia-ml path or soname>: the addon's enumeration without Node, as JSON on stdout (same
 * field names as nvmlQuery). For checks on a real GPU machine. Exit 0 with the host, or 1 with {"error":...}.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../nvml/enumerate.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one (strict enough for JSON output). */
static int utf8_len(const unsigned char *p) {
  int n;
  if (p[0] < 0x80) return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) n = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) n = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) n = 4;
  else return 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL terminator */
  return n;
}

/* NVML strings are ASCII in practice; anything that is not valid UTF-8 becomes U+FFFD so the JSON stays valid. */
static void json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int n = utf8_len(p);
    if (n == 0) {
      printf("\\ufffd");
      p++;
    } else if (n > 1) {
      fwrite(p, 1, (size_t)n, stdout);
      p += n;
    } else {
      if (*p == '"' || *p == '\\') printf("\\%c", *p);
      else if (*p < 0x20) printf("\\u%04x", *p);
      else putchar(*p);
      p++;
    }
  }
  putchar('"');
}

static void key_str(const char *k, const char *v) {
  printf("\"%s\":", k);
  json_string(v);
}

static void print_mig(const struct nvml_mig_info *m) {
  printf("{\"index\":%u", m->index);
  if (m->has_gpu_instance_id) printf(",\"gpuInstanceId\":%u", m->gpu_instance_id);
  if (m->has_compute_instance_id) printf(",\"computeInstanceId\":%u", m->compute_instance_id);
  putchar(',');
  key_str("uuid", m->uuid);
  if (m->has_name) {
    putchar(',');
    key_str("name", m->name);
  }
  if (m->has_memory_total) printf(",\"memoryTotal\":%llu", m->memory_total);
  putchar('}');
}

static void print_gpu(const struct nvml_gpu_info *g) {
  printf("{\"index\":%u,\"minor\":%u,", g->index, g->minor);
  key_str("uuid", g->uuid);
  putchar(',');
  key_str("name", g->name);
  if (g->has_brand) printf(",\"brand\":%d", g->brand);
  putchar(',');
  key_str("pciBusId", g->pci_bus_id);
  printf(",\"domain\":%u,\"bus\":%u,\"device\":%u,\"pciDeviceId\":%u", g->domain, g->bus, g->device,
         g->pci_device_id);
  if (g->has_cc) printf(",\"ccMajor\":%d,\"ccMinor\":%d", g->cc_major, g->cc_minor);
  if (g->has_architecture) printf(",\"architecture\":%u", g->architecture);
  if (g->has_memory_total) printf(",\"memoryTotal\":%llu", g->memory_total);
  if (g->has_mig_mode) printf(",\"migCurrent\":%u,\"migPending\":%u", g->mig_current, g->mig_pending);
  printf(",\"migDevices\":[");
  for (unsigned int j = 0; j < g->mig_count; j++) {
    if (j > 0) putchar(',');
    print_mig(&g->mig[j]);
  }
  printf("]}");
}

int main(int argc, char **argv) {
  struct nvml_host *host;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <libnvidia-ml path or soname>\n", argv[0]);
    printf("{\"error\":{\"code\":2,\"call\":\"main\",\"message\":\"usage: nvml-probe <libnvidia-ml path>\"}}\n");
    return 1;
  }
  host = calloc(1, sizeof *host);
  if (host == NULL) {
    printf("{\"error\":{\"code\":20,\"call\":\"calloc\",\"message\":\"out of memory\"}}\n");
    return 1;
  }
  if (nvml_enumerate(argv[1], host) != 0) {
    printf("{\"error\":{\"code\":%d,", host->error.code);
    key_str("call", host->error.call);
    putchar(',');
    key_str("message", host->error.message);
    printf("}}\n");
    free(host);
    return 1;
  }
  putchar('{');
  if (host->has_nvml_version) {
    key_str("nvmlVersion", host->nvml_version);
    putchar(',');
  }
  key_str("driverVersion", host->driver_version);
  if (host->has_cuda_driver_version) printf(",\"cudaDriverVersion\":%d", host->cuda_driver_version);
  printf(",\"devices\":[");
  for (unsigned int i = 0; i < host->device_count; i++) {
    if (i > 0) putchar(',');
    print_gpu(&host->devices[i]);
  }
  printf("]}\n");
  free(host);
  return 0;
}
