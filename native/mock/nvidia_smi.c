/*
 * Mock `nvidia-smi`: answers from whatever `libnvidia-ml.so.1` the dynamic loader finds (inside a container, the
 * fake NVML the runtime injected), through the same enumeration as the addon. Supports the default table, -L,
 * and --query-gpu=<fields> --format=csv[,noheader][,nounits]. Like the real tool it exits 9 when NVML fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nvml/enumerate.h"

#define MIB (1024ull * 1024ull)
#define MAX_QUERY_FIELDS 16

enum field { F_INDEX, F_UUID, F_NAME, F_BUS_ID, F_DRIVER, F_CC, F_MEMORY };
static const struct {
  const char *name;
  enum field field;
} known_fields[] = {
    {"index", F_INDEX},          {"uuid", F_UUID},           {"gpu_uuid", F_UUID},    {"name", F_NAME},
    {"gpu_name", F_NAME},        {"pci.bus_id", F_BUS_ID},   {"gpu_bus_id", F_BUS_ID}, {"driver_version", F_DRIVER},
    {"compute_cap", F_CC},       {"memory.total", F_MEMORY},
};

static void cuda_version(const struct nvml_host *h, char *buf, size_t size) {
  if (!h->has_cuda_driver_version) snprintf(buf, size, "N/A");
  else snprintf(buf, size, "%d.%d", h->cuda_driver_version / 1000, (h->cuda_driver_version % 1000) / 10);
}

/* "NVIDIA A100-SXM4-40GB MIG 1g.5gb" → "1g.5gb" */
static const char *mig_profile(const struct nvml_gpu_info *g, const struct nvml_mig_info *m) {
  size_t n = strlen(g->name);
  const char *p;
  if (!m->has_name) return "unknown";
  if (strncmp(m->name, g->name, n) == 0 && strncmp(m->name + n, " MIG ", 5) == 0) return m->name + n + 5;
  for (p = strstr(m->name, " MIG "); p != NULL;) {
    const char *next = strstr(p + 1, " MIG ");
    if (next == NULL) return p + 5;
    p = next;
  }
  return m->name;
}

static void print_table(const struct nvml_host *h) {
  char cuda[32];
  cuda_version(h, cuda, sizeof cuda);
  printf("NVIDIA-SMI %s  Driver Version: %s  CUDA Version: %s\n", h->driver_version, h->driver_version, cuda);
  printf("GPU  %-40s %-18s %s\n", "Name", "Bus-Id", "Memory-Total");
  for (unsigned int i = 0; i < h->device_count; i++) {
    const struct nvml_gpu_info *g = &h->devices[i];
    printf("%3u  %-40s %-18s ", g->index, g->name, g->pci_bus_id);
    if (g->has_memory_total) printf("%lluMiB\n", g->memory_total / MIB);
    else printf("N/A\n");
  }
  if (h->device_count == 0) printf("No devices were found\n");
}

static void print_list(const struct nvml_host *h) {
  for (unsigned int i = 0; i < h->device_count; i++) {
    const struct nvml_gpu_info *g = &h->devices[i];
    printf("GPU %u: %s (UUID: %s)\n", g->index, g->name, g->uuid);
    for (unsigned int j = 0; j < g->mig_count; j++)
      printf("  MIG %s Device %u: (UUID: %s)\n", mig_profile(g, &g->mig[j]), j, g->mig[j].uuid);
  }
}

static void print_field(const struct nvml_host *h, const struct nvml_gpu_info *g, enum field f, int units) {
  switch (f) {
    case F_INDEX: printf("%u", g->index); break;
    case F_UUID: printf("%s", g->uuid); break;
    case F_NAME: printf("%s", g->name); break;
    case F_BUS_ID: printf("%s", g->pci_bus_id); break;
    case F_DRIVER: printf("%s", h->driver_version); break;
    case F_CC:
      if (g->has_cc) printf("%d.%d", g->cc_major, g->cc_minor);
      else printf("[N/A]");
      break;
    case F_MEMORY:
      if (g->has_memory_total) printf(units ? "%llu MiB" : "%llu", g->memory_total / MIB);
      else printf("[N/A]");
      break;
  }
}

/* Parses "index,uuid,..." into fields; returns the count, or -1 after reporting an unknown field. */
static int parse_query(const char *spec, enum field *fields, const char **names) {
  static char buf[1024];
  int n = 0;
  if (strlen(spec) >= sizeof buf) return -1;
  strcpy(buf, spec);
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    while (*tok == ' ') tok++;
    size_t k, found = 0;
    for (k = 0; k < sizeof known_fields / sizeof known_fields[0]; k++) {
      if (strcmp(tok, known_fields[k].name) == 0) {
        found = 1;
        break;
      }
    }
    if (!found) {
      printf("Field \"%s\" is not a valid field to query.\n\n", tok);
      return -1;
    }
    if (n == MAX_QUERY_FIELDS) return -1;
    names[n] = known_fields[k].name;
    fields[n++] = known_fields[k].field;
  }
  return n;
}

static int usage_error(void) {
  printf("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n\n");
  return 2;
}

int main(int argc, char **argv) {
  enum { MODE_TABLE, MODE_LIST, MODE_QUERY } mode = MODE_TABLE;
  const char *query = NULL, *format = "csv";
  enum field fields[MAX_QUERY_FIELDS];
  const char *names[MAX_QUERY_FIELDS];
  int n_fields = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-L") == 0 || strcmp(a, "--list-gpus") == 0) mode = MODE_LIST;
    else if (strncmp(a, "--query-gpu=", 12) == 0) query = a + 12;
    else if (strcmp(a, "--query-gpu") == 0 && i + 1 < argc) query = argv[++i];
    else if (strncmp(a, "--format=", 9) == 0) format = a + 9;
    else if (strcmp(a, "--format") == 0 && i + 1 < argc) format = argv[++i];
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      printf("NVIDIA System Management Interface (mock)\n\n"
             "    nvidia-smi [-L] [--query-gpu=index,uuid,name,pci.bus_id,driver_version,compute_cap,memory.total "
             "--format=csv[,noheader][,nounits]]\n");
      return 0;
    } else return usage_error();
  }
  if (query != NULL) {
    if (mode == MODE_LIST) return usage_error();
    mode = MODE_QUERY;
    n_fields = parse_query(query, fields, names);
    if (n_fields <= 0) return 2;
    if (strncmp(format, "csv", 3) != 0) return usage_error();
  }

  struct nvml_host *h = calloc(1, sizeof *h);
  if (h == NULL || nvml_enumerate("libnvidia-ml.so.1", h) != 0) {
    printf("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
           "Make sure that the latest NVIDIA driver is installed and running.\n\n");
    free(h);
    return 9;
  }

  if (mode == MODE_TABLE) print_table(h);
  else if (mode == MODE_LIST) print_list(h);
  else {
    int header = strstr(format, "noheader") == NULL, units = strstr(format, "nounits") == NULL;
    if (header) { /* like the real tool, the header names the unit even with nounits */
      for (int k = 0; k < n_fields; k++)
        printf("%s%s%s", k ? ", " : "", names[k], fields[k] == F_MEMORY ? " [MiB]" : "");
      printf("\n");
    }
    for (unsigned int i = 0; i < h->device_count; i++) {
      for (int k = 0; k < n_fields; k++) {
        if (k) printf(", ");
        print_field(h, &h->devices[i], fields[k], units);
      }
      printf("\n");
    }
  }
  free(h);
  return 0;
}
