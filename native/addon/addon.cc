// The N-API addon: nvmlQuery(libraryPath) → the plain object of native/README.md; execve (execve.cc);
// peerCredentials(fd) for the warm-path service (docs/warm-path.md). NVML problems come back as
// { error: { code, call, message } }; only a non-string argument throws (TypeError). No C++ exceptions.
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <sys/socket.h>
#include <sys/stat.h>

extern "C" {
#include "../nvml/enumerate.h"
}

Napi::Value Execve(const Napi::CallbackInfo &info);  // execve.cc

namespace {

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};

Napi::Object MigToJs(Napi::Env env, const nvml_mig_info &m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, m.index));
  if (m.has_gpu_instance_id) o.Set("gpuInstanceId", Napi::Number::New(env, m.gpu_instance_id));
  if (m.has_compute_instance_id) o.Set("computeInstanceId", Napi::Number::New(env, m.compute_instance_id));
  o.Set("uuid", Napi::String::New(env, m.uuid));
  if (m.has_name) o.Set("name", Napi::String::New(env, m.name));
  if (m.has_memory_total) o.Set("memoryTotal", Napi::Number::New(env, static_cast<double>(m.memory_total)));
  return o;
}

Napi::Object GpuToJs(Napi::Env env, const nvml_gpu_info &g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, g.index));
  o.Set("minor", Napi::Number::New(env, g.minor));
  o.Set("uuid", Napi::String::New(env, g.uuid));
  o.Set("name", Napi::String::New(env, g.name));
  if (g.has_brand) o.Set("brand", Napi::Number::New(env, g.brand));
  o.Set("pciBusId", Napi::String::New(env, g.pci_bus_id));
  o.Set("domain", Napi::Number::New(env, g.domain));
  o.Set("bus", Napi::Number::New(env, g.bus));
  o.Set("device", Napi::Number::New(env, g.device));
  o.Set("pciDeviceId", Napi::Number::New(env, g.pci_device_id));
  if (g.has_cc) {
    o.Set("ccMajor", Napi::Number::New(env, g.cc_major));
    o.Set("ccMinor", Napi::Number::New(env, g.cc_minor));
  }
  if (g.has_architecture) o.Set("architecture", Napi::Number::New(env, g.architecture));
  // Bytes as a double: exact up to 8 PiB, far beyond any GPU.
  if (g.has_memory_total) o.Set("memoryTotal", Napi::Number::New(env, static_cast<double>(g.memory_total)));
  if (g.has_mig_mode) {
    o.Set("migCurrent", Napi::Number::New(env, g.mig_current));
    o.Set("migPending", Napi::Number::New(env, g.mig_pending));
  }
  if (g.has_persistence_mode) o.Set("persistenceMode", Napi::Number::New(env, g.persistence_mode));
  Napi::Array migs = Napi::Array::New(env, g.mig_count);
  for (unsigned int j = 0; j < g.mig_count; j++) migs.Set(j, MigToJs(env, g.mig[j]));
  o.Set("migDevices", migs);
  return o;
}

Napi::Value NvmlQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "nvmlQuery(libraryPath): libraryPath must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  // ~600 KiB: on the heap, zeroed; calloc avoids exceptions from operator new.
  std::unique_ptr<nvml_host, FreeDeleter> host(static_cast<nvml_host *>(std::calloc(1, sizeof(nvml_host))));
  Napi::Object result = Napi::Object::New(env);
  if (!host) {
    Napi::Object err = Napi::Object::New(env);
    err.Set("code", Napi::Number::New(env, NVML_ERROR_MEMORY));
    err.Set("call", Napi::String::New(env, "calloc"));
    err.Set("message", Napi::String::New(env, "out of memory"));
    result.Set("error", err);
    return result;
  }
  if (nvml_enumerate(path.c_str(), host.get()) != 0) {
    Napi::Object err = Napi::Object::New(env);
    err.Set("code", Napi::Number::New(env, host->error.code));
    err.Set("call", Napi::String::New(env, host->error.call));
    err.Set("message", Napi::String::New(env, host->error.message));
    result.Set("error", err);
    return result;
  }
  if (host->has_nvml_version) result.Set("nvmlVersion", Napi::String::New(env, host->nvml_version));
  result.Set("driverVersion", Napi::String::New(env, host->driver_version));
  if (host->has_cuda_driver_version) result.Set("cudaDriverVersion", Napi::Number::New(env, host->cuda_driver_version));
  Napi::Array devices = Napi::Array::New(env, host->device_count);
  for (unsigned int i = 0; i < host->device_count; i++) devices.Set(i, GpuToJs(env, host->devices[i]));
  result.Set("devices", devices);
  return result;
}

// peerCredentials(fd) → { pid, uid, gid } of the process on the other end of a connected unix socket (SO_PEERCRED,
// as the kernel recorded it at connect time). A bad argument is a TypeError; a failing getsockopt an Error naming
// errno (the caller closes the connection unanswered).
Napi::Value PeerCredentials(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof cred;
  std::memset(&cred, 0, sizeof cred);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    int err = fd < 0 ? EBADF : errno;
    Napi::Error::New(env, std::string("getsockopt(SO_PEERCRED): ") + std::strerror(err)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

// contentHash(buffer) → 16 hex digits: FNV-1a (64-bit) of the bytes. Not a cryptographic hash: it tells a file's
// content from another build's (the code cache's staleness check, src/runtime/loader.ts), where every file hashed is
// already trusted (root-owned, not group/world-writable). In C because loading node:crypto costs a cold create ~3 ms.
Napi::Value ContentHash(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "contentHash(buffer): buffer must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint8_t *p = b.Data();
  for (size_t i = 0, n = b.Length(); i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return Napi::String::New(env, hex, 16);
}

// identities(paths, follow) → for each path, src/launcher-contract.ts identityOf's text of its stat (follow) or lstat:
// "dev,ino,mode,uid,size,mtime_ns,ctime_ns"; "-" when it does not exist (ENOENT, ENOTDIR); null when it cannot be
// stat'ed otherwise. One call for a fingerprint's ~100 files: Node's bigint statSync costs ~6 us a file, this ~1.
Napi::Value Identities(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "identities(paths, follow): paths must be an array of strings, follow a boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array paths = info[0].As<Napi::Array>();
  bool follow = info[1].As<Napi::Boolean>().Value();
  Napi::Array out = Napi::Array::New(env, paths.Length());
  for (uint32_t i = 0; i < paths.Length(); i++) {
    Napi::Value v = paths.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "identities(paths, follow): paths must be an array of strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string path = v.As<Napi::String>().Utf8Value();
    struct stat st;
    if (path.find('\0') != std::string::npos) {
      out.Set(i, env.Null());
      continue;
    }
    if ((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) != 0) {
      out.Set(i, errno == ENOENT || errno == ENOTDIR ? Napi::Value(Napi::String::New(env, "-")) : env.Null());
      continue;
    }
    char text[160];
    auto ns = [](const struct timespec &t) { return static_cast<long long>(t.tv_sec) * 1000000000LL + static_cast<long long>(t.tv_nsec); };
    std::snprintf(text, sizeof text, "%llu,%llu,%u,%u,%lld,%lld,%lld", static_cast<unsigned long long>(st.st_dev),
                  static_cast<unsigned long long>(st.st_ino), static_cast<unsigned>(st.st_mode), static_cast<unsigned>(st.st_uid),
                  static_cast<long long>(st.st_size), ns(st.st_mtim), ns(st.st_ctim));
    out.Set(i, Napi::String::New(env, text));
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("identities", Napi::Function::New(env, Identities, "identities"));
  exports.Set("contentHash", Napi::Function::New(env, ContentHash, "contentHash"));
  exports.Set("nvmlQuery", Napi::Function::New(env, NvmlQuery, "nvmlQuery"));
  exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nvidia_runtime, Init)
