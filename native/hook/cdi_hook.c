/*
 * nvidia-cdi-hook: the createContainer hooks that CDI specs written by NVIDIA's `nvidia-ctk cdi generate` call
 * (/usr/bin/nvidia-cdi-hook <hook> [flags]), so those specs keep working once our runtime replaces the toolkit.
 * The same static binary as nvidia-runtime-hook; main() comes here when argv[0]'s basename is nvidia-cdi-hook.
 *
 *   nvidia-cdi-hook [--debug] [--quiet] create-symlinks --link TARGET::LINK...
 *   nvidia-cdi-hook update-ldcache --folder DIR... [--ldconfig-path /sbin/ldconfig]
 *   nvidia-cdi-hook enable-cuda-compat --host-driver-version=V [--cuda-compat-container-root DIR]
 *   nvidia-cdi-hook chmod --mode MODE --path PATH...
 *   nvidia-cdi-hook disable-device-node-modification
 *
 * Flags follow the toolkit's (v1.17.9, urfave/cli v2 over Go's flag package): -name or --name, the value as
 * -name=v or the next argument; repeatable flags also take comma-separated lists. Every hook takes the rootfs from
 * the OCI state on stdin (bundle -> config.json -> root.path, as update-ldcache does), resolves every path inside
 * it through inroot.c and creates with *at() calls relative to directory fds obtained that way, so a symlink in
 * the image never leads outside the rootfs. Unknown hooks and unknown flags: a warning, exit 0 (house rule 9).
 * Errors: one line "nvidia-cdi-hook: <what>: <why and fix>", exit 1. See README.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook.h"
#include "inroot.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6; the same number on every architecture */
#endif

#define CONFD "/etc/ld.so.conf.d"
/* The first line of the 00-compat-*.conf files we write, as each grammar writes it; a file that starts with either
 * is ours to remove when it is stale. */
#define COMPAT_HEADER "# written by nvidia-cdi-hook enable-cuda-compat for this container\n"
#define COMPAT_HEADER_RUNTIME "# written by nvidia-runtime-hook --cuda-compat for this container\n"
#define DRIVER_PARAMS "/proc/driver/nvidia/params"
#define PARAMS_CAP (64u << 10)

static const char USAGE[] =
    "nvidia-cdi-hook [--debug] [--quiet] HOOK [flags]; hooks: create-symlinks --link TARGET::LINK... | "
    "update-ldcache --folder DIR... [--ldconfig-path PATH] | enable-cuda-compat --host-driver-version V "
    "[--cuda-compat-container-root DIR] | chmod --mode MODE --path PATH... | disable-device-node-modification";

/* ---- flags: Go's flag grammar, as urfave/cli v2 applies it --------------------------------------------- */

struct list {
    const char *item[MAX_ITEMS];
    int n;
};

struct flag {
    const char *name;
    const char **value; /* a single-valued flag: the last one given wins */
    struct list *list;  /* a repeatable flag */
};

/* urfave/cli v2 splits each value of a repeatable flag on ',' and trims the spaces around every part. */
static void add_items(const char *cmd, const char *name, struct list *l, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        die(cmd, "out of memory");
    for (char *part = copy, *next; part; part = next) {
        next = strchr(part, ',');
        if (next)
            *next++ = '\0';
        while (*part == ' ' || *part == '\t')
            part++;
        size_t n = strlen(part);
        while (n > 0 && (part[n - 1] == ' ' || part[n - 1] == '\t' || part[n - 1] == '\r' || part[n - 1] == '\n'))
            part[--n] = '\0';
        if (l->n == MAX_ITEMS)
            die(cmd, "more than %d --%s values: split the hook in two", MAX_ITEMS, name);
        l->item[l->n++] = part;
    }
}

/*
 * argv[first..]: "-name" or "--name", its value "=v" or the next argument whatever it looks like; "--" ends the
 * flags, and so does the first argument that is not a flag (the toolkit's hooks take no arguments, and Go stops
 * there too: what follows is ignored, with a warning). An unknown flag is a warning; its value is the next
 * argument when that does not look like a flag. -h/--help: the usage, and nothing done (returns 1).
 */
static int parse_flags(const char *cmd, int argc, char **argv, int first, const struct flag *flags, int nflags)
{
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            warn("%s: argument '%s' and everything after it ignored (the hook takes only flags)", cmd, arg);
            return 0;
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        if (arg[1] == '-' && name[0] == '\0')
            return 0; /* "--" */
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if ((n == 1 && name[0] == 'h') || (n == 4 && strncmp(name, "help", 4) == 0)) {
            fprintf(stderr, "usage: %s\n", USAGE);
            return 1;
        }
        const struct flag *f = NULL;
        for (int k = 0; k < nflags && !f; k++)
            if (strlen(flags[k].name) == n && strncmp(flags[k].name, name, n) == 0)
                f = &flags[k];
        if (!f) {
            if (!eq && i + 1 < argc && argv[i + 1][0] != '-')
                i++; /* its value, most likely */
            warn("%s: unknown flag '-%s%.*s' ignored (written for a newer toolkit?)", cmd, arg[1] == '-' ? "-" : "",
                 (int)n, name);
            continue;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            die(cmd, "flag --%s needs a value", f->name);
        if (f->list)
            add_items(cmd, f->name, f->list, value);
        else
            *f->value = value;
    }
    return 0;
}

/* ---- paths -------------------------------------------------------------------------------------------- */

/* path made absolute and cleaned lexically, as the toolkit's filepath.Join(root, path) cleans it: empty and "."
 * components dropped, ".." removes the previous one and never climbs above "/". The result has no "." or ".."
 * component, so every remaining one is a plain name for inroot.c to resolve. */
void clean_path(const char *cmd, const char *in, char out[PATH_MAX])
{
    size_t len = 1;
    out[0] = '/';
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 1 && out[len - 1] != '/')
                len--;
            if (len > 1)
                len--;
        } else if (!(n == 1 && p[0] == '.')) {
            if (len + 1 + n >= PATH_MAX)
                die(cmd, "path '%.100s...' is too long", in);
            if (len > 1)
                out[len++] = '/';
            memcpy(out + len, p, n);
            len += n;
        }
        p = e;
    }
    out[len] = '\0';
}

/* "/a/b/c" -> parent "/a/b", leaf "c"; "/c" -> "/", "c". path is clean and not "/". */
static void split_path(const char *cmd, const char *path, char parent[PATH_MAX], char leaf[NAME_MAX + 1])
{
    const char *slash = strrchr(path, '/');
    if (strlen(slash + 1) > NAME_MAX)
        die(cmd, "'%s': a file name longer than %d bytes", path, NAME_MAX);
    strcpy(leaf, slash + 1);
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = '\0';
}

/* ---- the rootfs ----------------------------------------------------------------------------------------- */

/* --container-spec is the toolkit's testing-only way to read the state from a file instead of stdin; its value
 * would decide which directory is written, so anything but "" or "-" (stdin) is refused, not ignored. */
static int open_rootfs(const char *cmd, struct buf state, const char *container_spec)
{
    if (container_spec && container_spec[0] && strcmp(container_spec, "-") != 0)
        die(cmd, "--container-spec %s: reading the container state from a file is not supported: drop the flag "
                 "(the runtime writes the state on stdin)", container_spec);
    if (state.len == 0)
        die(cmd, "no container state on stdin: run as an OCI hook (the runtime writes the state on stdin)");
    int rootfd = rootfs_from_state(state);
    struct stat r, h;
    if (fstat(rootfd, &r) != 0 || stat("/", &h) != 0)
        die(cmd, "the container rootfs: %s", strerror(errno));
    if (r.st_dev == h.st_dev && r.st_ino == h.st_ino)
        die(cmd, "the container's root.path is the host's /: refusing to write into it; give the container its own "
                 "rootfs");
    return rootfd;
}

/* ---- create-symlinks ------------------------------------------------------------------------------------ */

static void replace_with_link(int dfd, const char *leaf, const char *target, const char *link)
{
    char tmp[NAME_MAX + 1];
    int made = -1;
    for (int i = 0; i < 100 && made != 0; i++) {
        snprintf(tmp, sizeof tmp, ".nvidia-cdi-hook-link.%d.%d", (int)getpid(), i);
        made = symlinkat(target, dfd, tmp);
        if (made != 0 && errno != EEXIST)
            break;
    }
    if (made != 0)
        die("create-symlinks", "cannot create a temporary link next to %s in the rootfs: %s", link, strerror(errno));
    if (renameat(dfd, tmp, dfd, leaf) != 0) {
        int err = errno;
        unlinkat(dfd, tmp, 0);
        die("create-symlinks", "cannot replace %s in the rootfs: %s", link, strerror(err));
    }
}

/* `ln -sfn TARGET LINK` inside the rootfs, as the toolkit does it: missing parents are created; an identical
 * link is left alone; another link, a file or an empty directory at LINK is replaced (a link or file atomically,
 * by renaming a temporary link over it); a directory that is not empty is an error (the toolkit fails there too). */
static void create_link(int rootfd, const char *target, const char *link)
{
    char parent[PATH_MAX], leaf[NAME_MAX + 1], cur[PATH_MAX];
    split_path("create-symlinks", link, parent, leaf);
    int dfd = mkdir_in_root(rootfd, "create-symlinks", parent);
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            die("create-symlinks", "%s in the rootfs: %s", link, strerror(errno));
        if (symlinkat(target, dfd, leaf) != 0) {
            if (errno != EEXIST)
                die("create-symlinks", "cannot create %s in the rootfs: %s", link, strerror(errno));
            replace_with_link(dfd, leaf, target, link); /* appeared meanwhile */
        }
    } else if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(dfd, leaf, cur, sizeof cur);
        if (n < 0 || (size_t)n != strlen(target) || memcmp(cur, target, (size_t)n) != 0)
            replace_with_link(dfd, leaf, target, link);
    } else if (S_ISDIR(st.st_mode)) {
        if (unlinkat(dfd, leaf, AT_REMOVEDIR) != 0)
            die("create-symlinks", "%s in the rootfs is a directory%s: remove it from the image or drop that --link",
                link, errno == ENOTEMPTY || errno == EEXIST ? " that is not empty" : "");
        if (symlinkat(target, dfd, leaf) != 0)
            die("create-symlinks", "cannot create %s in the rootfs: %s", link, strerror(errno));
    } else {
        replace_with_link(dfd, leaf, target, link);
    }
    close(dfd);
}

static int cmd_create_symlinks(int argc, char **argv, int first, struct buf state)
{
    static const char *const cmd = "create-symlinks";
    struct list links = {0};
    const char *spec = NULL;
    const struct flag flags[] = {{"link", NULL, &links}, {"container-spec", &spec, NULL}};
    if (parse_flags(cmd, argc, argv, first, flags, 2))
        return 0;
    /* Every --link is checked before the rootfs is touched. */
    const char *target[MAX_ITEMS];
    char *path[MAX_ITEMS];
    int n = 0;
    for (int i = 0; i < links.n; i++) {
        const char *spec_i = links.item[i], *sep = strstr(spec_i, "::");
        if (!sep || strstr(sep + 2, "::"))
            die(cmd, "--link '%s' is not TARGET::LINK (exactly one '::')", spec_i);
        if (sep == spec_i || sep[2] == '\0')
            die(cmd, "--link '%s' has an empty %s", spec_i, sep == spec_i ? "target" : "link path");
        int dup = 0;
        for (int k = 0; k < i && !dup; k++)
            dup = strcmp(links.item[k], spec_i) == 0; /* the toolkit does each distinct --link once */
        if (dup)
            continue;
        size_t tlen = (size_t)(sep - spec_i);
        if (tlen >= PATH_MAX)
            die(cmd, "--link target '%.100s...' is too long", spec_i);
        char *t = strndup(spec_i, tlen), *p = malloc(PATH_MAX);
        if (!t || !p)
            die(cmd, "out of memory");
        clean_path(cmd, sep + 2, p);
        if (strcmp(p, "/") == 0)
            die(cmd, "--link '%s': the link path is the container's /", spec_i);
        target[n] = t;
        path[n++] = p;
    }
    if (n == 0)
        return 0;
    int rootfd = open_rootfs(cmd, state, spec);
    for (int i = 0; i < n; i++)
        create_link(rootfd, target[i], path[i]);
    return 0;
}

/* ---- update-ldcache ------------------------------------------------------------------------------------- */

/* The toolkit's NormalizeLDConfigPath: "/sbin/ldconfig" (or "/sbin/ldconfig.real") means /sbin/ldconfig.real
 * when that exists (Debian and Ubuntu's /sbin/ldconfig can be a shell wrapper), else /sbin/ldconfig. */
static const char *normalize_ldconfig(const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".real") == 0)
        n -= 5;
    char *base = strndup(path, n), *real = malloc(n + 6);
    struct stat st;
    if (!base || !real)
        die("update-ldcache", "out of memory");
    snprintf(real, n + 6, "%s.real", base);
    return stat(real, &st) == 0 ? real : base;
}

/* The toolkit's update-ldcache, done by the same machinery as `nvidia-runtime-hook update-ldcache` (README.md:
 * conf.d file, sealed host ldconfig chrooted into the rootfs). --ldconfig-path is a host path, as the toolkit
 * takes it (it prefixes '@'); it must be absolute (a relative one would be looked up from runc's cwd, the rootfs). */
static int cmd_update_ldcache(int argc, char **argv, int first, struct buf state)
{
    static const char *const cmd = "update-ldcache";
    struct list folders = {0};
    const char *ldconfig = NULL, *spec = NULL;
    const struct flag flags[] = {{"folder", NULL, &folders}, {"ldconfig-path", &ldconfig, NULL},
                                 {"container-spec", &spec, NULL}};
    if (parse_flags(cmd, argc, argv, first, flags, 3))
        return 0;
    struct args a = {0};
    for (int i = 0; i < folders.n; i++) {
        if (folders.item[i][0] == '\0')
            continue; /* the toolkit would write an empty line: nothing */
        if (folders.item[i][0] != '/')
            die(cmd, "--folder '%s' is not an absolute path in the container: give the absolute path", folders.item[i]);
        a.folders[a.nfolders++] = folders.item[i];
    }
    if (ldconfig && ldconfig[0] == '\0')
        die(cmd, "--ldconfig-path is empty: give the host's ldconfig, e.g. /sbin/ldconfig");
    if (ldconfig && ldconfig[0] != '/')
        die(cmd, "--ldconfig-path '%s' is not an absolute host path: give one, e.g. /sbin/ldconfig", ldconfig);
    a.ldconfig = normalize_ldconfig(ldconfig ? ldconfig : "/sbin/ldconfig");
    int rootfd = open_rootfs(cmd, state, spec);
    return update_ldcache_in(rootfd, &a);
}

/* ---- enable-cuda-compat --------------------------------------------------------------------------------- */

/* The major version: the digits before the first '.', as a number; -1 when there are none. */
long major_of(const char *version)
{
    long v = 0;
    const char *p = version;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000000L)
            return -1;
    }
    return p == version || (*p != '.' && *p != '\0') ? -1 : v;
}

/* Reads a regular conf.d entry (never following a link), up to 64 KiB; NULL otherwise. */
static char *read_entry(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < 65536 && (buf = malloc((size_t)st.st_size + 1))) {
        ssize_t n = read(fd, buf, (size_t)st.st_size);
        buf[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    return buf;
}

static int is_ours(const char *text)
{
    return strncmp(text, COMPAT_HEADER, sizeof COMPAT_HEADER - 1) == 0 ||
           strncmp(text, COMPAT_HEADER_RUNTIME, sizeof COMPAT_HEADER_RUNTIME - 1) == 0;
}

/* Makes /etc/ld.so.conf.d hold exactly one file of ours listing compat_dir (want != NULL), or none (want NULL):
 * a file we wrote for an earlier start of this rootfs (docker start after a driver upgrade) must not keep older
 * compat libraries in front of a newer driver. Only files that begin with one of our headers are ever removed. */
static void reconcile_compat_conf(int rootfd, const char *what, const char *want_name, const char *want_text)
{
    int dfd = inroot_open(rootfd, CONFD, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 && errno != ENOENT)
        die(what, CONFD " in the rootfs: %s", strerror(errno));
    if (dfd < 0 && !want_name)
        return;
    if (dfd < 0) {
        close(mkdir_in_root(rootfd, what, CONFD));
        if ((dfd = inroot_open(rootfd, CONFD, O_RDONLY | O_DIRECTORY)) < 0)
            die(what, CONFD " in the rootfs: %s", strerror(errno));
    }
    DIR *d = fdopendir(dfd);
    if (!d)
        die(what, CONFD ": %s", strerror(errno));
    int have = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "00-compat-", 10) != 0 || n < 15 || strcmp(e->d_name + n - 5, ".conf") != 0)
            continue;
        char *text = read_entry(dfd, e->d_name);
        if (text && want_name && strcmp(e->d_name, want_name) == 0 && strcmp(text, want_text) == 0)
            have = 1;
        else if (text && is_ours(text) && !(want_name && strcmp(e->d_name, want_name) == 0) &&
                 unlinkat(dirfd(d), e->d_name, 0) != 0)
            die(what, "cannot remove the stale " CONFD "/%s: %s", e->d_name, strerror(errno));
        free(text);
    }
    closedir(d);
    if (want_name && !have) {
        char path[sizeof CONFD + NAME_MAX + 1];
        snprintf(path, sizeof path, CONFD "/%s", want_name);
        write_atomic(rootfd, path, want_text);
    }
}

/* The major of the one regular <dir>/libcuda.so.*.* (links and directories do not count), or -1: none, more than
 * one (a warning), or a non-numeric version (a warning). dir is resolved in the rootfs; absent: -1. */
static long compat_major_in(int rootfd, const char *what, const char *dir)
{
    long compat_major = -1;
    int cfd = inroot_open(rootfd, dir, O_RDONLY | O_DIRECTORY);
    if (cfd < 0 && errno != ENOENT && errno != ENOTDIR)
        die(what, "%s in the rootfs: %s", dir, strerror(errno));
    if (cfd < 0)
        return -1;
    DIR *d = fdopendir(cfd);
    if (!d)
        die(what, "%s in the rootfs: %s", dir, strerror(errno));
    int found = 0;
    char version[NAME_MAX + 1] = "";
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        const char *rest = e->d_name + 11;
        if (strncmp(e->d_name, "libcuda.so.", 11) != 0 || !strchr(rest, '.') ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (found++ == 0)
            snprintf(version, sizeof version, "%s", rest);
    }
    closedir(d);
    if (found > 1)
        warn("%s: %d libcuda.so.*.* files in %s: cannot tell which is the compat driver; nothing done", what, found, dir);
    else if (found == 1 && (compat_major = major_of(version)) < 0)
        warn("%s: %s/libcuda.so.%s has no numeric major version; nothing done", what, dir, version);
    return found == 1 ? compat_major : -1;
}

int cuda_compat_in(int rootfd, const char *what, long host_major, const char *dir, int use_confd)
{
    long compat_major = dir ? compat_major_in(rootfd, what, dir) : -1;
    int newer = compat_major > host_major;
    if (newer && use_confd) {
        char want_name[NAME_MAX + 1], want_text[PATH_MAX + sizeof COMPAT_HEADER_RUNTIME + 2];
        snprintf(want_name, sizeof want_name, "00-compat-%ld.conf", compat_major);
        snprintf(want_text, sizeof want_text, "%s%s\n",
                 strcmp(hook_prog, "nvidia-cdi-hook") == 0 ? COMPAT_HEADER : COMPAT_HEADER_RUNTIME, dir);
        reconcile_compat_conf(rootfd, what, want_name, want_text);
    } else {
        reconcile_compat_conf(rootfd, what, NULL, NULL);
    }
    return newer;
}

/*
 * CUDA forward compatibility (v1.17.9's rule): when the image has exactly one regular file
 * <compat dir>/libcuda.so.*.* (links and directories do not count) whose major version is greater than the host
 * driver's, /etc/ld.so.conf.d/00-compat-<major>.conf lists the compat dir, ahead of every other conf.d file, so
 * the update-ldcache hook that follows puts those libraries first. Nothing without --host-driver-version, without
 * the compat dir or /etc/ld.so.cache in the rootfs, or when the compat libraries are not newer. Everything is
 * resolved inside the rootfs; no ldconfig runs here (the CVE-2025-23266 lesson: no image code, no image env).
 * The decision and the conf.d work are cuda_compat_in, which update-ldcache --cuda-compat shares.
 */
static int cmd_enable_cuda_compat(int argc, char **argv, int first, struct buf state)
{
    static const char *const cmd = "enable-cuda-compat";
    const char *driver = NULL, *cuda = NULL, *dir_arg = NULL, *spec = NULL;
    const struct flag flags[] = {{"host-driver-version", &driver, NULL}, {"host-cuda-version", &cuda, NULL},
                                 {"cuda-compat-container-root", &dir_arg, NULL}, {"container-spec", &spec, NULL}};
    if (parse_flags(cmd, argc, argv, first, flags, 4))
        return 0;
    if (cuda && cuda[0])
        warn("%s: --host-cuda-version is not supported (it needs the CUDA version note of the compat libcuda); "
             "deciding by --host-driver-version alone%s", cmd, driver && driver[0] ? "" : ", which is not given: nothing done");
    if (!driver || driver[0] == '\0')
        return 0;
    long host_major = major_of(driver);
    if (host_major < 0)
        die(cmd, "--host-driver-version '%s' has no numeric major version: give the host driver's version, "
                 "e.g. 550.54.15", driver);
    char dir[PATH_MAX];
    if (dir_arg && dir_arg[0] != '/')
        die(cmd, "--cuda-compat-container-root '%s' is not an absolute path in the container", dir_arg);
    clean_path(cmd, dir_arg ? dir_arg : DEFAULT_COMPAT_DIR, dir);
    int rootfd = open_rootfs(cmd, state, spec);
    int has_cache = exists_in_root(rootfd, "/etc/ld.so.cache"); /* else not glibc: ldconfig will not run */
    cuda_compat_in(rootfd, cmd, host_major, has_cache ? dir : NULL, 1);
    return 0;
}

/* ---- chmod ---------------------------------------------------------------------------------------------- */

/* chmod of the inode behind an O_PATH fd: fchmodat2(AT_EMPTY_PATH) where the kernel has it (6.6), else through
 * its /proc/self/fd link, which names that inode and nothing else (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) trick). */
static int chmod_fd(int fd, mode_t mode)
{
    if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
        return -1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return chmod(proc, mode);
}

/* chmod MODE PATH... inside the rootfs (the toolkit uses it for /dev/dri). The last component is never followed:
 * a symbolic link there is left as it is, with a warning (the toolkit would follow it). A missing path or one
 * that already has the mode is skipped; EPERM/EACCES is a warning, as the toolkit ignores it (a /dev bound from
 * the host). --mode is octal, at most 0777: the toolkit drops setuid/setgid/sticky bits silently, we refuse them. */
static int cmd_chmod(int argc, char **argv, int first, struct buf state)
{
    static const char *const cmd = "chmod";
    struct list paths = {0};
    const char *mode_arg = NULL, *spec = NULL;
    const struct flag flags[] = {{"path", NULL, &paths}, {"mode", &mode_arg, NULL}, {"container-spec", &spec, NULL}};
    if (parse_flags(cmd, argc, argv, first, flags, 3))
        return 0;
    char *mode_s = strdup(mode_arg ? mode_arg : ""), *end;
    if (!mode_s)
        die(cmd, "out of memory");
    while (*mode_s == ' ' || *mode_s == '\t')
        mode_s++;
    for (size_t n = strlen(mode_s); n > 0 && (mode_s[n - 1] == ' ' || mode_s[n - 1] == '\t'); n--)
        mode_s[n - 1] = '\0';
    if (mode_s[0] == '\0')
        die(cmd, "no --mode: give an octal mode, e.g. --mode 755");
    errno = 0;
    unsigned long mode = strtoul(mode_s, &end, 8);
    if (*end || errno || mode_s[0] == '-' || mode_s[0] == '+')
        die(cmd, "--mode '%s' is not an octal mode: give one, e.g. --mode 755", mode_s);
    if (mode > 0777)
        die(cmd, "--mode %s has setuid, setgid or sticky bits, which the toolkit ignores: give at most 777", mode_s);
    char *clean[MAX_ITEMS];
    for (int i = 0; i < paths.n; i++) {
        if (paths.item[i][0] == '\0')
            die(cmd, "an empty --path: give the paths in the container to change");
        if (!(clean[i] = malloc(PATH_MAX)))
            die(cmd, "out of memory");
        clean_path(cmd, paths.item[i], clean[i]);
    }
    if (paths.n == 0)
        return 0;
    int rootfd = open_rootfs(cmd, state, spec);
    for (int i = 0; i < paths.n; i++) {
        char parent[PATH_MAX], leaf[NAME_MAX + 1];
        int fd;
        if (strcmp(clean[i], "/") == 0) {
            fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else {
            split_path(cmd, clean[i], parent, leaf);
            int dfd = inroot_open(rootfd, parent, O_PATH | O_DIRECTORY);
            if (dfd < 0 && (errno == ENOENT || errno == ENOTDIR))
                continue;
            if (dfd < 0)
                die(cmd, "%s in the rootfs: %s", parent, strerror(errno));
            fd = openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            close(dfd);
        }
        struct stat st;
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 || fstat(fd, &st) != 0)
            die(cmd, "%s in the rootfs: %s", clean[i], strerror(errno));
        if (S_ISLNK(st.st_mode))
            warn("%s: %s in the rootfs is a symbolic link: not followed, left as it is", cmd, clean[i]);
        else if ((st.st_mode & 07777) != mode && chmod_fd(fd, (mode_t)mode) != 0) {
            if (errno != EPERM && errno != EACCES)
                die(cmd, "%s in the rootfs: %s", clean[i], strerror(errno));
            warn("%s: %s in the rootfs: %s (ignored, as the toolkit ignores it)", cmd, clean[i], strerror(errno));
        }
        close(fd);
    }
    return 0;
}

/* ---- disable-device-node-modification ------------------------------------------------------------------- */

/* The host's driver params with "ModifyDeviceFiles: 1" turned into 0, or NULL when there is nothing to change:
 * no driver (no params file), already 0, or no such line. */
static char *modified_params(size_t *len)
{
    static const char *const cmd = "disable-device-node-modification";
    int fd = open(DRIVER_PARAMS, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return NULL;
        die(cmd, DRIVER_PARAMS " on the host: %s", strerror(errno));
    }
    char *in = malloc(PARAMS_CAP + 1), *out = malloc(PARAMS_CAP + 2);
    size_t n = 0, o = 0;
    ssize_t r;
    if (!in || !out)
        die(cmd, "out of memory");
    while (n < PARAMS_CAP && (r = read(fd, in + n, PARAMS_CAP - n)) > 0) /* procfs: read until EOF */
        n += (size_t)r;
    close(fd);
    if (n == PARAMS_CAP)
        die(cmd, DRIVER_PARAMS " on the host is larger than 64 KiB");
    in[n] = '\0';
    int modified = 0;
    for (char *line = in, *next; line < in + n; line = next) {
        next = strchrnul(line, '\n');
        size_t l = (size_t)(next - line);
        if (*next)
            next++;
        if (l > 0 && line[l - 1] == '\r')
            l--;
        if (l == 20 && strncmp(line, "ModifyDeviceFiles: 0", 20) == 0)
            return NULL; /* the driver already leaves device nodes alone */
        if (l == 20 && strncmp(line, "ModifyDeviceFiles: 1", 20) == 0) {
            memcpy(out + o, "ModifyDeviceFiles: 0\n", 21);
            o += 21;
            modified = 1;
            continue;
        }
        memcpy(out + o, line, l);
        o += l;
        out[o++] = '\n';
    }
    free(in);
    if (!modified) {
        free(out);
        return NULL;
    }
    *len = o;
    return out;
}

static void fd_path(char out[32], int fd) { snprintf(out, 32, "/proc/self/fd/%d", fd); }

/*
 * The container's /proc/driver/nvidia/params is covered by a read-only copy whose ModifyDeviceFiles is 0, so the
 * driver's user-space libraries do not create or chmod device nodes in the container (the toolkit's hook, v1.18).
 * The copy lives in a small tmpfs mounted on a scratch directory at the top of the rootfs; once the copy is bound
 * over the params file (in the container's mount namespace, where runc runs this hook), the tmpfs is detached
 * and the directory removed: nothing stays in the rootfs, nothing is written on the host. Mounts go through
 * /proc/self/fd/N of fds resolved inside the rootfs (runc's way), so no image symlink can redirect them.
 */
static int cmd_disable_device_node_modification(int argc, char **argv, int first, struct buf state)
{
    static const char *const cmd = "disable-device-node-modification";
    const char *spec = NULL;
    const struct flag flags[] = {{"container-spec", &spec, NULL}};
    if (parse_flags(cmd, argc, argv, first, flags, 1))
        return 0;
    size_t len = 0;
    char *text = modified_params(&len);
    if (!text)
        return 0;
    int rootfd = open_rootfs(cmd, state, spec);
    struct stat st;
    int tfd = inroot_open(rootfd, DRIVER_PARAMS, O_PATH | O_NOFOLLOW);
    if (tfd < 0)
        die(cmd, DRIVER_PARAMS " in the container: %s: the container needs the driver's procfs at /proc",
            strerror(errno));
    if (fstat(tfd, &st) != 0 || !S_ISREG(st.st_mode))
        die(cmd, DRIVER_PARAMS " in the container is not a regular file: refusing to mount over it");

    char scratch[64], p1[32], p2[32], why[256] = "";
    snprintf(scratch, sizeof scratch, ".nvidia-cdi-hook-params.%d", (int)getpid());
    if (mkdirat(rootfd, scratch, 0700) != 0 && (errno != EEXIST || unlinkat(rootfd, scratch, AT_REMOVEDIR) != 0 ||
                                                 mkdirat(rootfd, scratch, 0700) != 0))
        die(cmd, "cannot create the scratch directory /%s in the rootfs: %s", scratch, strerror(errno));
    int sfd = openat(rootfd, scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), mfd = -1, pfd = -1, nfd = -1;
    struct statfs sfs;
    struct statvfs vfs;
    fd_path(p1, sfd);
    if (sfd < 0 || mount("tmpfs", p1, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=256k,mode=0700") != 0) {
        snprintf(why, sizeof why, "cannot mount a tmpfs for the copy: %s", strerror(errno));
        goto out;
    }
    mfd = openat(rootfd, scratch, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* the tmpfs, now */
    if (mfd < 0 || fstatfs(mfd, &sfs) != 0 || sfs.f_type != TMPFS_MAGIC) { /* then unmounted below */
        snprintf(why, sizeof why, "the scratch tmpfs is not where it was mounted");
        goto out;
    }
    int ffd = openat(mfd, "params", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    if (ffd < 0 || write(ffd, text, len) != (ssize_t)len || close(ffd) != 0) {
        snprintf(why, sizeof why, "cannot write the copy: %s", strerror(errno));
        goto out;
    }
    pfd = openat(mfd, "params", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    fd_path(p1, pfd);
    fd_path(p2, tfd);
    if (pfd < 0 || mount(p1, p2, NULL, MS_BIND, NULL) != 0) {
        snprintf(why, sizeof why, "cannot bind the copy over " DRIVER_PARAMS ": %s", strerror(errno));
        goto out;
    }
    nfd = inroot_open(rootfd, DRIVER_PARAMS, O_PATH | O_NOFOLLOW); /* the copy, now */
    fd_path(p2, nfd);
    if (nfd < 0 || mount(NULL, p2, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
        fstatvfs(nfd, &vfs) != 0 || !(vfs.f_flag & ST_RDONLY)) {
        snprintf(why, sizeof why, "cannot make the copy read-only: %s", strerror(errno));
        if (nfd >= 0)
            umount2(p2, MNT_DETACH);
    }
out:
    if (mfd >= 0) {
        fd_path(p1, mfd);
        umount2(p1, MNT_DETACH); /* the bound copy keeps its tmpfs alive; nothing else can reach it */
    }
    unlinkat(rootfd, scratch, AT_REMOVEDIR);
    if (why[0])
        die(cmd, "%s", why);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------------------- */

int cdi_main(int argc, char **argv, struct buf state)
{
    static const struct {
        const char *name;
        int (*run)(int, char **, int, struct buf);
    } hooks[] = {
        {"create-symlinks", cmd_create_symlinks},
        {"update-ldcache", cmd_update_ldcache},
        {"enable-cuda-compat", cmd_enable_cuda_compat},
        {"chmod", cmd_chmod},
        {"disable-device-node-modification", cmd_disable_device_node_modification},
    };
    int i = 1;
    /* The toolkit's global flags come before the hook: --debug/-d and --quiet (booleans); -h/--help, -v/--version. */
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
        size_t n = strcspn(name, "=");
        if ((n == 5 && strncmp(name, "debug", 5) == 0) || (n == 1 && name[0] == 'd') ||
            (n == 5 && strncmp(name, "quiet", 5) == 0))
            continue;
        if ((n == 4 && strncmp(name, "help", 4) == 0) || (n == 1 && name[0] == 'h') ||
            (n == 7 && strncmp(name, "version", 7) == 0) || (n == 1 && name[0] == 'v')) {
            fprintf(stderr, "usage: %s\n", USAGE);
            return 0;
        }
        warn("unknown global flag '%s' ignored (written for a newer toolkit?)", argv[i]);
    }
    if (i >= argc) {
        warn("no hook given: nothing done (usage: %s)", USAGE);
        return 0;
    }
    for (size_t k = 0; k < sizeof hooks / sizeof *hooks; k++)
        if (strcmp(argv[i], hooks[k].name) == 0)
            return hooks[k].run(argc, argv, i + 1, state);
    if (strcmp(argv[i], "noop") == 0) /* the toolkit's hidden test hook */
        return 0;
    if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "h") == 0) {
        fprintf(stderr, "usage: %s\n", USAGE);
        return 0;
    }
    warn("unsupported hook '%s' ignored (written by a newer toolkit?)", argv[i]);
    return 0;
}
