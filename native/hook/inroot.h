/* Path resolution confined to a root directory fd (a container rootfs), for code running as host root.
 * Every path is interpreted as if root were "/": absolute symlinks and ".." never leave it, magic links
 * (/proc/<pid>/root, /proc/self/fd/N) are refused. Kernel-enforced with openat2(RESOLVE_IN_ROOT) when the
 * kernel has it (Linux >= 5.6); otherwise a component-by-component walk with O_NOFOLLOW over a stack of
 * directory fds (see README.md). Callers create files only with *at() calls relative to a returned dir fd. */
#ifndef NVR_INROOT_H
#define NVR_INROOT_H
#include <limits.h>
#include <sys/types.h>

/* Opens path inside root with flags (O_CLOEXEC is added; O_CREAT is refused). -1 + errno on failure. */
int inroot_open(int rootfd, const char *path, int flags);

/* Opens the directory that contains path's last component (O_PATH|O_DIRECTORY) and copies that component
 * into leaf. The last component is never followed. Fails with EINVAL for "", "/", "." or ".." leaves. */
int inroot_open_parent(int rootfd, const char *path, char leaf[NAME_MAX + 1]);

/* 1 when the fallback walk is in use (openat2 unavailable, or built with -DINROOT_FORCE_WALK for tests). */
int inroot_using_walk(void);
#endif
