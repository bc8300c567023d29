// execve(path, argv, envp, keepFds[, envFd]): replace this Node process by the low-level runtime (runc), same pid.
// With envFd, runc's environment is read from that fd (the launcher's sealed memfd of the caller's environment,
// NUL-separated) instead of envp: Node itself never saw those variables, and bytes that are not UTF-8 survive.
// Node leaves the process in a state a child must not inherit (SECURITY.md §4, R10): every fd Node opened is
// CLOEXEC-less or leaks, stdio may be O_NONBLOCK, SIGPIPE/SIGXFSZ are ignored and threads may block signals.
// So, immediately before execve: fds 0-2 and the caller's keepFds (--preserve-fds, LISTEN_FDS) are made
// inheritable and blocking, every other fd gets CLOEXEC, signal dispositions 1..31 go back to SIG_DFL and the
// mask is emptied. Returns only on failure, with { code: errno, call }.
#include <napi.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace {

bool StringArray(const Napi::Value &v, std::vector<std::string> &out) {
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    if (!item.IsString()) return false;
    std::string s = item.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) return false;  // an embedded NUL would silently truncate
    out.push_back(s);
  }
  return true;
}

// The NUL-separated strings of fd (read from offset 0), or false when it cannot be read.
bool ReadEnvFd(int fd, std::vector<std::string> &out) {
  std::string all;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    all.append(buf, static_cast<size_t>(n));
    off += n;
  }
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) return false;  // every entry ends with its NUL
    out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  close(fd);
  return true;
}

void SetCloexecAbove(int lowest) {
  if (syscall(SYS_close_range, lowest, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  DIR *d = opendir("/proc/self/fd");  // kernels before 5.11
  if (!d) return;
  int dfd = dirfd(d);
  while (struct dirent *e = readdir(d)) {
    int fd = atoi(e->d_name);
    if (fd >= lowest && fd != dfd) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  }
  closedir(d);
}

void MakeInheritable(int fd, bool blocking) {
  int fdflags = fcntl(fd, F_GETFD);
  if (fdflags < 0) return;  // not open: nothing to pass on
  fcntl(fd, F_SETFD, fdflags & ~FD_CLOEXEC);
  if (blocking) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
}

}  // namespace

Napi::Value Execve(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<std::string> argv, envp;
  std::vector<int> keep;
  if (info.Length() < 4 || !info[0].IsString() || !StringArray(info[1], argv) || !StringArray(info[2], envp) ||
      !info[3].IsArray() || argv.empty()) {
    Napi::TypeError::New(env, "execve(path: string, argv: string[] (non-empty), envp: string[], keepFds: number[])")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array keepArr = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < keepArr.Length(); i++) {
    Napi::Value v = keepArr.Get(i);
    if (!v.IsNumber()) {
      Napi::TypeError::New(env, "execve: keepFds must be numbers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int fd = v.As<Napi::Number>().Int32Value();
    if (fd > 2) keep.push_back(fd);
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (info.Length() > 4 && info[4].IsNumber()) {
    envp.clear();
    if (!ReadEnvFd(info[4].As<Napi::Number>().Int32Value(), envp)) {
      int err = errno ? errno : EINVAL;
      Napi::Object result = Napi::Object::New(env);
      result.Set("code", Napi::Number::New(env, err));
      result.Set("call", Napi::String::New(env, "read caller environment"));
      result.Set("message", Napi::String::New(env, strerror(err)));
      return result;
    }
  }

  std::vector<char *> cargv, cenvp;
  for (auto &s : argv) cargv.push_back(const_cast<char *>(s.c_str()));
  cargv.push_back(nullptr);
  for (auto &s : envp) cenvp.push_back(const_cast<char *>(s.c_str()));
  cenvp.push_back(nullptr);

  SetCloexecAbove(3);
  for (int fd = 0; fd <= 2; fd++) MakeInheritable(fd, true);
  for (int fd : keep) MakeInheritable(fd, false);

  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  pthread_sigmask(SIG_SETMASK, &empty, nullptr);

  execve(path.c_str(), cargv.data(), cenvp.data());
  int err = errno;
  Napi::Object result = Napi::Object::New(env);
  result.Set("code", Napi::Number::New(env, err));
  result.Set("call", Napi::String::New(env, "execve"));
  result.Set("message", Napi::String::New(env, strerror(err)));
  return result;
}
