/* See inroot.h. */
#define _GNU_SOURCE
#include "inroot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_LINKS 40       /* like the kernel's MAXSYMLINKS */
#define MAX_DEPTH 256      /* directory fds held by the walk */
#define EAGAIN_RETRIES 128 /* openat2 says EAGAIN on a concurrent rename: retry a bounded number of times */

#ifdef INROOT_FORCE_WALK
static int g_walk = 1;
#else
static int g_walk = 0;
#endif

int inroot_using_walk(void) { return g_walk; }

/* The fallback: resolve one component at a time, never letting the kernel follow anything. Symlinks are read
 * and spliced into the remaining path ourselves; ".." pops our own stack of directory fds, so neither a
 * symlink nor a concurrent rename can take us above rootfd. */
static int walk(int rootfd, const char *path, int flags)
{
    char buf[2 * PATH_MAX], tmp[2 * PATH_MAX], target[PATH_MAX];
    int stack[MAX_DEPTH];
    int depth = 0, links = 0, result = -1, err = 0;
    stack[0] = rootfd;
    if (strlen(path) >= sizeof buf)
        return errno = ENAMETOOLONG, -1;
    strcpy(buf, path);
    char *p = buf;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0') { /* the path names a directory we hold */
            result = openat(stack[depth], ".", flags | O_CLOEXEC);
            err = errno;
            break;
        }
        char *comp = p;
        while (*p && *p != '/')
            p++;
        if (*p)
            *p++ = '\0';
        char *rest = p;
        while (*rest == '/')
            rest++;
        int last = *rest == '\0';
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (depth > 0)
                close(stack[depth--]);
            continue;
        }
        int fd = openat(stack[depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            err = errno;
            if (fd >= 0)
                close(fd);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
            err = errno;
            close(fd);
            if (n < 0)
                break;
            if (++links > MAX_LINKS) {
                err = ELOOP;
                break;
            }
            target[n] = '\0';
            if ((size_t)n + 2 + strlen(rest) >= sizeof tmp) {
                err = ENAMETOOLONG;
                break;
            }
            size_t rn = strlen(rest);
            memcpy(tmp, target, (size_t)n);
            tmp[n] = '/';
            memcpy(tmp + n + 1, rest, rn + 1);
            memcpy(buf, tmp, (size_t)n + rn + 2);
            p = buf;
            if (target[0] == '/')
                while (depth > 0)
                    close(stack[depth--]);
            continue;
        }
        if (last) {
            /* Re-open the checked name; O_NOFOLLOW turns a swap to a symlink in between into ELOOP. */
            close(fd);
            result = openat(stack[depth], comp, flags | O_NOFOLLOW | O_CLOEXEC);
            err = errno;
            break;
        }
        if (!S_ISDIR(st.st_mode) || depth + 1 >= MAX_DEPTH) {
            close(fd);
            err = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR;
            break;
        }
        stack[++depth] = fd;
    }
    while (depth > 0)
        close(stack[depth--]);
    errno = err;
    return result;
}

int inroot_open(int rootfd, const char *path, int flags)
{
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        return errno = EINVAL, -1;
    if (!g_walk) {
        struct open_how how = {
            .flags = (unsigned long long)(flags | O_CLOEXEC),
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd = -1;
        for (int i = 0; i < EAGAIN_RETRIES; i++) {
            fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
            if (fd >= 0 || errno != EAGAIN)
                break;
        }
        if (fd >= 0 || errno != ENOSYS)
            return fd; /* includes EAGAIN after the last retry: fail closed */
        g_walk = 1;
    }
    return walk(rootfd, path, flags);
}

int inroot_open_parent(int rootfd, const char *path, char leaf[NAME_MAX + 1])
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return errno = ENAMETOOLONG, -1;
    memcpy(dir, path, n + 1);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > NAME_MAX)
        return errno = EINVAL, -1;
    strcpy(leaf, name);
    if (slash)
        slash[1] = '\0';
    else
        strcpy(dir, ".");
    return inroot_open(rootfd, dir, O_PATH | O_DIRECTORY);
}
