/*
 * nvidia-runtime-hook: the createContainer hook. runc runs it as host root, in the container's mount namespace,
 * before pivot_root, with the explicit minimal env the runtime put in the hook entry; its cwd may be the rootfs.
 *
 *   nvidia-runtime-hook update-ldcache [--root <host path of rootfs>] [--folder DIR]... [--link TARGET::LINK]...
 *                                      [--ldconfig /sbin/ldconfig] [--cuda-compat HOST_DRIVER_VERSION
 *                                      [--cuda-compat-dir /usr/local/cuda/compat]]
 *   nvidia-runtime-hook create-symlinks [--root <host path of rootfs>] --link TARGET::LINK...
 *
 * Without --root (a CDI spec cannot know it), the rootfs is root.path of <bundle>/config.json, the bundle
 * being named by the OCI state runc writes on stdin. create-symlinks makes the links only (no ldconfig): what a
 * per-device CDI edit needs (a GPU's /dev/dri/by-path links).
 *
 * Everything inside the rootfs is reached through fds resolved by inroot.c (never a "<root>/<path>" string),
 * created with *at() calls (O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat, mkdirat, renameat), and ldconfig is the host
 * binary run from a sealed memfd, chrooted into the rootfs, in a private mount namespace with /proc and /sys
 * masked. Single-threaded on purpose. Errors: one line "nvidia-runtime-hook: <what>: <why>", exit 1.
 *
 * Run as nvidia-cdi-hook (argv[0]'s basename; dist/bin/nvidia-cdi-hook links here), the binary speaks the grammar of
 * NVIDIA's CDI hooks instead: cdi_hook.c, which shares the machinery below through hook.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"
#include "inroot.h"
#include "json.h"
#include "ldcache_fast.h"

#define STATE_CAP (16u << 20)       /* OCI state on stdin */
#define CONFIG_CAP (32u << 20)      /* the bundle's config.json */
#define STDIN_DEADLINE_MS 10000
#define CONF_CAP (1u << 20)         /* one ld.so.conf file */
#define LDCONFIG_TIMEOUT_S 20
#define CHILD_REPORTED 126          /* exit status of a child that already printed its error */
#define MAX_KNOWN 1024              /* configured directories */
#define OUR_CONF "00-nvidia-runtime.conf"
#define CONFD "/etc/ld.so.conf.d"

/* Control characters (a newline in a path from the state or config.json) become '?': the error stays one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

const char *hook_prog = "nvidia-runtime-hook";

void die(const char *what, const char *fmt, ...)
{
    char head[4200], why[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(head, sizeof head, "%s", what);
    one_line(head);
    one_line(why);
    fprintf(stderr, "%s: %s: %s\n", hook_prog, head, why);
    exit(1);
}

void warn(const char *fmt, ...)
{
    char msg[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    one_line(msg);
    fprintf(stderr, "%s: warning: %s\n", hook_prog, msg);
}

/* ---- stdin: the OCI state, read fully (capped, with a deadline) before any slow work ------------------- */

/* Reads stdin to EOF. Kept: without --root the rootfs is found from the state's bundle. */
static struct buf read_state(void)
{
    struct buf b = {NULL, 0};
    size_t cap = 0;
    struct timespec t0, t;
    if (isatty(0))
        return b;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = STDIN_DEADLINE_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            die("stdin", "no end of the container state within %d s", STDIN_DEADLINE_MS / 1000);
        if (r < 0 || (pfd.revents & POLLNVAL))
            return b; /* no stdin at all: nothing to read */
        if (cap - b.len < 65536) {
            cap = cap ? cap * 2 : 65536;
            if (!(b.data = realloc(b.data, cap)))
                die("stdin", "out of memory");
        }
        ssize_t n = read(0, b.data + b.len, cap - b.len);
        if (n == 0) { /* trimmed to the exact length, so the ASan build catches any read past it */
            char *exact = realloc(b.data, b.len ? b.len : 1);
            b.data = exact ? exact : b.data;
            return b;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("stdin", "%s", strerror(errno));
        }
        b.len += (size_t)n;
        if (b.len > STATE_CAP)
            die("stdin", "container state larger than 16 MiB");
    }
}

/* ---- arguments ---------------------------------------------------------------------------------------- */

/* update-ldcache's flags, or create-symlinks' (links_only: --root and --link only). */
static void parse_args(int argc, char **argv, struct args *a, int links_only)
{
    const char *compat_dir = NULL;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *val;
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0)
            die("arguments", "unexpected '%s'", arg);
        if (!links_only && strcmp(arg, "--ldconfig-only") == 0) { /* no value: skip the fast path */
            a->ldconfig_only = 1;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            die("arguments", "%s needs a value", arg);
#define IS(name) (n == sizeof(name) - 1 && strncmp(arg, name, n) == 0)
        if (IS("--root")) {
            a->root = val;
        } else if (IS("--link")) {
            char *sep = strstr(val, "::");
            if (a->nlinks == MAX_ITEMS)
                die("--link", "more than %d links", MAX_ITEMS);
            if (!sep || sep == val || sep[2] != '/')
                die("--link", "'%s' is not TARGET::/absolute/link", val);
            *sep = '\0'; /* argv is ours to modify */
            a->link_target[a->nlinks] = val;
            a->link_path[a->nlinks++] = sep + 2;
        } else if (links_only) {
            die("arguments", "unknown option '%.*s' (create-symlinks takes --root and --link)", (int)n, arg);
        } else if (IS("--ldconfig")) {
            a->ldconfig = val;
        } else if (IS("--folder")) {
            if (a->nfolders == MAX_ITEMS)
                die("--folder", "more than %d folders", MAX_ITEMS);
            if (val[0] != '/')
                die("--folder", "'%s' is not an absolute path", val);
            a->folders[a->nfolders++] = val;
        } else if (IS("--cuda-compat")) {
            if ((a->host_major = major_of(val)) < 0)
                die("--cuda-compat", "'%s' has no numeric major version: give the host driver's version, e.g. 550.54.15",
                    val);
            a->compat_version = val;
        } else if (IS("--cuda-compat-dir")) {
            if (val[0] != '/')
                die("--cuda-compat-dir", "'%s' is not an absolute path in the container", val);
            compat_dir = val;
        } else {
            die("arguments", "unknown option '%.*s'", (int)n, arg);
        }
#undef IS
    }
    if (a->root && a->root[0] != '/') /* absent: found from the OCI state (rootfs_from_state) */
        die("--root", "an absolute host path of the container rootfs is required, not '%s'", a->root);
    if (a->ldconfig && a->ldconfig[0] != '/')
        die("--ldconfig", "'%s' is not an absolute host path", a->ldconfig);
    if (compat_dir && !a->compat_version)
        die("--cuda-compat-dir", "given without --cuda-compat HOST_DRIVER_VERSION: it would be ignored");
    if (a->compat_version) {
        char *dir = malloc(PATH_MAX);
        if (!dir)
            die("--cuda-compat-dir", "out of memory");
        clean_path("--cuda-compat-dir", compat_dir ? compat_dir : DEFAULT_COMPAT_DIR, dir);
        a->compat_dir = dir;
    }
}

/* ---- the rootfs without --root: OCI state -> bundle -> config.json -> root.path --------------------------- */

/* <bundle>/config.json, opened relative to the bundle fd without following a symlink, regular file, capped. */
static struct buf read_config(int bfd, const char *cfgpath)
{
    int fd = openat(bfd, "config.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        die(cfgpath, "%s", errno == ELOOP ? "is a symbolic link (refused)" : strerror(errno));
    if (fstat(fd, &st) != 0)
        die(cfgpath, "%s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        die(cfgpath, "not a regular file");
    if (st.st_size > (off_t)CONFIG_CAP)
        die(cfgpath, "larger than 32 MiB");
    struct buf b = {malloc(st.st_size ? (size_t)st.st_size : 1), 0}; /* exact: see read_state */
    if (!b.data)
        die(cfgpath, "out of memory");
    for (ssize_t n; b.len < (size_t)st.st_size; b.len += (size_t)n)
        if ((n = read(fd, b.data + b.len, (size_t)st.st_size - b.len)) <= 0) {
            if (n < 0 && errno == EINTR) {
                n = 0;
                continue;
            }
            die(cfgpath, "%s", n < 0 ? strerror(errno) : "file shrank while read");
        }
    close(fd);
    return b;
}

/* The rootfs of a CDI-spec hook, which cannot know it when the spec is written: the OCI state on stdin names
 * the bundle ("bundle", or the legacy "bundlePath"), whose config.json names the rootfs ("root.path",
 * absolute or relative to the bundle). Returns an O_PATH fd of the rootfs. */
int rootfs_from_state(struct buf state)
{
    static const char *const bundle_key[] = {"bundle"}, *const legacy_key[] = {"bundlePath"},
                             *const root_key[] = {"root", "path"};
    char why[512], *bundle, *root;
    if (state.len == 0)
        die("--root", "not given, and no container state on stdin to find the bundle in");
    enum json_result r = json_get_string(state.data, state.len, bundle_key, 1, &bundle, why, sizeof why);
    if (r == JSON_ABSENT)
        r = json_get_string(state.data, state.len, legacy_key, 1, &bundle, why, sizeof why);
    if (r == JSON_BAD)
        die("container state on stdin", "%s", why);
    if (r == JSON_ABSENT)
        die("container state on stdin", "no \"bundle\" (and no legacy \"bundlePath\")%s",
            strcmp(hook_prog, "nvidia-cdi-hook") == 0 ? ": cannot tell where the container rootfs is" : "; pass --root");
    if (bundle[0] != '/')
        die("container state on stdin", "bundle '%s' is not an absolute path", bundle);
    int bfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        die("bundle", "%s: %s", bundle, strerror(errno));
    size_t n = strlen(bundle) + sizeof "/config.json";
    char *cfgpath = malloc(n);
    if (!cfgpath)
        die("bundle", "out of memory");
    snprintf(cfgpath, n, "%s%s", bundle, strcmp(bundle, "/") == 0 ? "config.json" : "/config.json");
    struct buf cfg = read_config(bfd, cfgpath);
    r = json_get_string(cfg.data, cfg.len, root_key, 2, &root, why, sizeof why);
    if (r == JSON_BAD)
        die(cfgpath, "%s", why);
    if (r == JSON_ABSENT || root[0] == '\0')
        die(cfgpath, "no root.path: cannot tell where the container rootfs is");
    /* runc cleans root.path lexically (filepath.Join/Abs) while the kernel resolves ".." after symlinks: with
     * a "..", the two could name different directories, so none is accepted. */
    for (const char *c = root; (c = strstr(c, "..")); c += 2)
        if ((c == root || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
            die(cfgpath, "root.path '%s' has a '..' component (refused)", root);
    /* Relative to the bundle fd we read config.json from (openat ignores it for an absolute path). */
    int rootfd = openat(bfd, root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        die("root.path", "%s (from %s): %s", root, cfgpath, strerror(errno));
    close(bfd);
    free(cfg.data);
    free(cfgpath);
    free(bundle);
    free(root);
    return rootfd;
}

/* ---- symlinks (--link) -------------------------------------------------------------------------------- */

void (*hook_created)(const char *path, int is_dir);

int mkdir_in_root(int rootfd, const char *what, const char *dir)
{
    char prefix[PATH_MAX], comp[NAME_MAX + 1];
    size_t len = 0;
    int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die(what, "the container rootfs: %s", strerror(errno));
    for (const char *p = dir; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n > NAME_MAX)
            die(what, "'%s': a file name longer than %d bytes", dir, NAME_MAX);
        if (len + 1 + n >= sizeof prefix)
            die(what, "'%.100s...': path too long", dir);
        memcpy(comp, p, n);
        comp[n] = '\0';
        prefix[len++] = '/';
        memcpy(prefix + len, p, n);
        len += n;
        prefix[len] = '\0';
        int dots = strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0; /* resolved, never created */
        int next = inroot_open(rootfd, prefix, O_PATH | O_DIRECTORY);
        if (next < 0 && errno == ENOENT && !dots) {
            int made = mkdirat(fd, comp, 0755) == 0;
            if (!made && errno != EEXIST)
                die(what, "cannot create %s in the rootfs: %s", prefix, strerror(errno));
            next = inroot_open(rootfd, prefix, O_PATH | O_DIRECTORY);
            if (next < 0 && errno == ENOENT)
                die(what, "%s in the rootfs is a symbolic link to nothing: fix the image (a directory is needed there)",
                    prefix);
            if (made && next >= 0 && hook_created)
                hook_created(prefix, 1);
        }
        if (next < 0)
            die(what, "%s in the rootfs: %s%s", prefix, strerror(errno),
                errno == ENOTDIR ? " (a file where a directory is needed: fix the image)" : "");
        close(fd);
        fd = next;
        p = e;
    }
    return fd;
}

static void make_link(int rootfd, const char *target, const char *link)
{
    char dir[PATH_MAX], leaf[NAME_MAX + 1], cur[4096], tmp[NAME_MAX + 1];
    size_t len = strlen(link);
    if (len >= sizeof dir)
        die("--link", "'%.100s...': path too long", link);
    memcpy(dir, link, len + 1);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    char *slash = strrchr(dir, '/'); /* link is absolute: there is one */
    const char *name = slash + 1;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > NAME_MAX)
        die("--link", "%s: not a name for a link", link);
    strcpy(leaf, name);
    slash[1] = '\0';
    int dfd = mkdir_in_root(rootfd, "--link", dir); /* missing parents are created (gbm/, /dev/dri/by-path/) */
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            die("--link", "%s: %s", link, strerror(errno));
        if (symlinkat(target, dfd, leaf) == 0) {
            if (hook_created)
                hook_created(link, 0);
        } else if (errno != EEXIST) {
            die("--link", "cannot create %s: %s", link, strerror(errno));
        }
    } else if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(dfd, leaf, cur, sizeof cur);
        if (n < 0 || (size_t)n != strlen(target) || memcmp(cur, target, (size_t)n) != 0) {
            /* Replace atomically: a temp symlink renamed over the old one. */
            int made = -1;
            for (int i = 0; i < 100 && made != 0; i++) {
                snprintf(tmp, sizeof tmp, ".nvidia-runtime-link.%d.%d", (int)getpid(), i);
                made = symlinkat(target, dfd, tmp);
                if (made != 0 && errno != EEXIST)
                    break;
            }
            if (made != 0)
                die("--link", "cannot create a temporary link next to %s: %s", link, strerror(errno));
            if (renameat(dfd, tmp, dfd, leaf) != 0) {
                int err = errno;
                unlinkat(dfd, tmp, 0);
                die("--link", "cannot replace %s: %s", link, strerror(err));
            }
        }
    } /* anything else already there belongs to the image: leave it */
    close(dfd);
}

void make_links_in(int rootfd, struct args *a)
{
    for (int i = 0; i < a->nlinks; i++)
        make_link(rootfd, a->link_target[i], a->link_path[i]);
}

/* ---- ld.so.conf (--folder) ---------------------------------------------------------------------------- */

struct conf {
    const char *known[MAX_KNOWN]; /* directories configured by the image (not by our own file) */
    int nknown;
    const char *ours[MAX_ITEMS];  /* directories in our own file */
    int nours;
    int includes_confd;           /* /etc/ld.so.conf includes ld.so.conf.d/ *.conf */
    char *our_text;               /* current content of our file, or NULL */
    int unusual;                  /* for the fast path: a "=TYPE" suffix, another include, a 00-compat-*.conf */
};

/* Reads a whole regular file inside the rootfs; NULL when it does not exist or is not a regular file. */
char *read_in_root(int rootfd, const char *path)
{
    int fd = inroot_open(rootfd, path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return NULL;
        die("read", "%s in the rootfs: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) /* a FIFO would hang ldconfig */
        die("read", "%s in the rootfs is not a regular file: refusing to run ldconfig on it", path);
    if (!S_ISREG(st.st_mode) || st.st_size > CONF_CAP) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t len = 0;
    ssize_t n;
    if (!buf)
        die("read", "out of memory");
    while (len < (size_t)st.st_size && (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* "//usr//lib/" -> "/usr/lib", in place. */
static char *normalize(char *dir)
{
    char *w = dir;
    for (char *r = dir; *r; r++)
        if (!(*r == '/' && w > dir && w[-1] == '/'))
            *w++ = *r;
    while (w > dir + 1 && w[-1] == '/')
        w--;
    *w = '\0';
    return dir;
}

static int listed(const char *const *list, int n, const char *dir)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], dir) == 0)
            return 1;
    return 0;
}

/* The subset of ldconfig's grammar that matters here: one or more directories per line (glibc accepts
 * whitespace, ',' and ':' separators and a "=TYPE" suffix), '#' comments, "include" and "hwcap" lines. */
static void parse_conf(struct conf *c, char *text, int is_main, int is_ours)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save, *tok = strtok_r(line, " \t\r,:", &save);
        if (!tok || strcmp(tok, "hwcap") == 0)
            continue;
        if (strcmp(tok, "include") == 0) {
            while ((tok = strtok_r(NULL, " \t\r", &save)))
                if (is_main && (strcmp(tok, "ld.so.conf.d/*.conf") == 0 || strcmp(tok, CONFD "/*.conf") == 0))
                    c->includes_confd = 1;
                else
                    c->unusual = 1;
            continue;
        }
        for (; tok; tok = strtok_r(NULL, " \t\r,:", &save)) {
            char *eq = strchr(tok, '=');
            if (eq)
                *eq = '\0', c->unusual = 1;
            if (tok[0] != '/') {
                c->unusual = 1;
                continue;
            }
            normalize(tok);
            if (is_ours && c->nours < MAX_ITEMS)
                c->ours[c->nours++] = tok;
            else if (!is_ours && c->nknown < MAX_KNOWN)
                c->known[c->nknown++] = tok;
        }
    }
}

static void load_conf(int rootfd, struct conf *c)
{
    static const char *const trusted[] = {"/lib", "/usr/lib", "/lib64", "/usr/lib64"};
    for (size_t i = 0; i < sizeof trusted / sizeof *trusted; i++)
        c->known[c->nknown++] = trusted[i];
    char *main_text = read_in_root(rootfd, "/etc/ld.so.conf");
    if (main_text)
        parse_conf(c, main_text, 1, 0);
    if (!c->includes_confd)
        return;
    int dfd = inroot_open(rootfd, CONFD, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        if (errno == ENOENT)
            return;
        die("read", CONFD " in the rootfs: %s", strerror(errno));
    }
    DIR *d = fdopendir(dfd);
    if (!d)
        die("read", CONFD ": %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        char path[sizeof CONFD + NAME_MAX + 1];
        if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".conf") != 0)
            continue;
        if (strncmp(e->d_name, "00-compat-", 10) == 0)
            c->unusual = 1; /* CUDA forward compat: kept on the ldconfig path */
        snprintf(path, sizeof path, CONFD "/%s", e->d_name);
        char *text = read_in_root(rootfd, path);
        if (!text)
            continue;
        int is_ours = strcmp(e->d_name, OUR_CONF) == 0;
        if (is_ours)
            c->our_text = strdup(text);
        parse_conf(c, text, 0, is_ours);
    }
    closedir(d);
}

/* 1 when /etc/ld.so.conf includes ld.so.conf.d/ *.conf, so that a file there is read. */
static int confd_included(int rootfd)
{
    struct conf c = {0};
    char *main_text = read_in_root(rootfd, "/etc/ld.so.conf");
    if (main_text)
        parse_conf(&c, main_text, 1, 0);
    free(main_text);
    return c.includes_confd;
}

/* Writes path's content atomically: O_CREAT|O_EXCL|O_NOFOLLOW temp file in the same directory, fsync, rename,
 * directory fsync. The directory fd comes from inroot_open_parent, so nothing here follows a rootfs link. */
void write_atomic(int rootfd, const char *path, const char *text)
{
    char leaf[NAME_MAX + 1], tmp[NAME_MAX + 1];
    int dfd = inroot_open_parent(rootfd, path, leaf);
    if (dfd < 0)
        die("write", "directory of %s in the rootfs: %s", path, strerror(errno));
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof tmp, ".%.200s.%d.%d", leaf, (int)getpid(), i);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        die("write", "temporary file for %s: %s", path, strerror(errno));
    struct stat st;
    int is_new = fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n <= 0) {
            unlinkat(dfd, tmp, 0);
            die("write", "%s: %s", path, strerror(errno));
        }
        off += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0 || renameat(dfd, tmp, dfd, leaf) != 0) {
        int err = errno;
        unlinkat(dfd, tmp, 0);
        die("write", "%s: %s", path, strerror(err));
    }
    if (is_new && hook_created)
        hook_created(path, 0);
    int dirfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0) {
        fsync(dirfd);
        close(dirfd);
    }
    close(dfd);
}

/* Folders not configured by the image go into our conf.d file when ld.so.conf includes conf.d, else onto
 * ldconfig's command line. Not both: ldconfig scans command-line folders before every configured one, so the
 * driver's libcuda.so.1 would shadow the CUDA forward-compat one that enable-cuda-compat lists in an earlier
 * conf.d file (00-compat-*). Returns how many go on the command line (missing[]). */
static int update_conf(int rootfd, struct args *a, const char **missing)
{
    struct conf c = {0};
    int nmissing = 0;
    if (a->nfolders == 0)
        return 0;
    load_conf(rootfd, &c);
    for (int i = 0; i < a->nfolders; i++) {
        char *dir = normalize(strdup(a->folders[i]));
        if (!listed(c.known, c.nknown, dir) && !listed(missing, nmissing, dir))
            missing[nmissing++] = dir;
    }
    if (nmissing == 0 || !c.includes_confd)
        return nmissing; /* conf.d is not read: the command line is the only way in */
    static char text[MAX_ITEMS * 4200];
    size_t len = (size_t)snprintf(text, sizeof text, "# written by nvidia-runtime-hook for this container\n");
    for (int i = 0; i < nmissing; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\n", missing[i]);
    if (c.our_text && strcmp(c.our_text, text) == 0)
        return 0; /* idempotent: already written */
    close(mkdir_in_root(rootfd, "write", CONFD));
    write_atomic(rootfd, CONFD "/" OUR_CONF, text);
    return 0;
}

/* ---- ldconfig: host binary, sealed memfd, chroot, private mount ns ----------------------------------- */

/* 1 when the ELF file in fd has a PT_INTERP segment (needs a dynamic loader), 0 when static, -1 not ELF64. */
static int elf_is_dynamic(int fd)
{
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize < sizeof(Elf64_Phdr))
        return -1;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) != (ssize_t)sizeof ph)
            return -1;
        if (ph.p_type == PT_INTERP)
            return 1;
    }
    return 0;
}

static int sealed_ldconfig(const char *path)
{
    if (!path)
        path = access("/sbin/ldconfig.real", X_OK) == 0 ? "/sbin/ldconfig.real" : "/sbin/ldconfig";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die("ldconfig", "cannot open %s on the host: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        die("ldconfig", "%s is not a regular file", path);
    int mfd = memfd_create("ldconfig", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        die("ldconfig", "memfd_create: %s", strerror(errno));
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = sendfile(mfd, fd, &off, (size_t)(st.st_size - off));
        if (n <= 0)
            die("ldconfig", "copying %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
    }
    close(fd);
    int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (fcntl(mfd, F_ADD_SEALS, seals) != 0 || (fcntl(mfd, F_GET_SEALS) & seals) != seals)
        die("ldconfig", "cannot seal the copy of %s (refusing to run it unsealed): %s", path, strerror(errno));
    /* Checked on the sealed copy, which is exactly what will run. */
    int dyn = elf_is_dynamic(mfd);
    if (dyn < 0)
        die("ldconfig", "%s is not a 64-bit ELF executable", path);
    if (dyn > 0)
        die("ldconfig", "%s is dynamically linked: in the rootfs it would run the container's loader and libc; "
                        "use a static ldconfig (%s)", path,
            strcmp(hook_prog, "nvidia-cdi-hook") == 0 ? "--ldconfig-path" : "--ldconfig");
    return mfd;
}

__attribute__((noreturn)) static void child_fail(const char *step)
{
    fprintf(stderr, "%s: ldconfig: %s: %s\n", hook_prog, step, strerror(errno));
    _exit(CHILD_REPORTED);
}

/* Hides any procfs/sysfs the rootfs already has (runc mounts /proc before createContainer hooks run): their
 * magic links (/proc/1/root, /proc/self/fd) would let ldconfig follow a rootfs symlink out of the chroot. */
static void mask(const char *dir)
{
    /* Detach whatever is mounted there first (in this private namespace only): mounting over the procfs runc
     * set up fails with EINVAL on some kernels, and an empty directory is as safe as a tmpfs. EINVAL from
     * umount means "not a mount point": nothing to hide. */
    while (umount2(dir, MNT_DETACH) == 0)
        ;
    if (errno != EINVAL && errno != ENOENT && errno != ENOTDIR)
        child_fail(dir);
    if (mount("tmpfs", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") != 0 &&
        errno != ENOENT && errno != ENOTDIR && errno != EINVAL)
        child_fail(dir);
}

/*
 * What ldconfig may still do as root in the rootfs: read libraries and write /etc/ld.so.cache, whoever owns them
 * (CAP_DAC_OVERRIDE). Every other capability leaves the bounding set, so the exec'd ldconfig cannot get it back
 * (no_new_privs), and a seccomp filter refuses with EPERM the calls that reach beyond the rootfs or the kernel:
 * mounts and namespaces, ptrace, modules, kexec, bpf, keys, perf, handles, sockets. Nothing else is needed to scan
 * directories and write one file; a compromised ldconfig (a hostile library it parses) gets no further.
 */
static void confine_ldconfig(void)
{
    for (int cap = 0; cap <= 63; cap++)
        if (cap != CAP_DAC_OVERRIDE && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            child_fail("drop capabilities");
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = 1u << CAP_DAC_OVERRIDE;
    if (syscall(SYS_capset, &hdr, data) != 0)
        child_fail("capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail("no_new_privs");
    static const int denied[] = {
        SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_unshare, SYS_setns, SYS_ptrace,
        SYS_process_vm_readv, SYS_process_vm_writev, SYS_kexec_load, SYS_kexec_file_load, SYS_init_module,
        SYS_finit_module, SYS_delete_module, SYS_bpf, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_perf_event_open,
        SYS_userfaultfd, SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_swapon, SYS_swapoff, SYS_reboot,
        SYS_sethostname, SYS_setdomainname, SYS_iopl, SYS_ioperm, SYS_socket, SYS_socketpair, SYS_fsopen,
        SYS_fsmount, SYS_move_mount, SYS_open_tree, SYS_mknod, SYS_mknodat,
    };
    enum { N = sizeof denied / sizeof *denied };
    struct sock_filter prog[6 + 2 * N + 1];
    size_t k = 0;
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS); /* the i386 entry */
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1); /* x32 numbers */
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    for (size_t i = 0; i < N; i++) {
        prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i], 0, 1);
        prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    }
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog fprog = {(unsigned short)k, prog};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
        child_fail("seccomp");
}

__attribute__((noreturn)) static void ldconfig_child(int rootfd, int mfd, const char **dirs, int ndirs,
                                                     pid_t parent, const sigset_t *oldmask)
{
    const char *argv[MAX_ITEMS + 3];
    char *const envp[] = {NULL};
    argv[0] = "ldconfig";
    for (int i = 0; i < ndirs; i++)
        argv[i + 1] = dirs[i];
    argv[ndirs + 1] = NULL;
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(CHILD_REPORTED);
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0)
        child_fail("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        child_fail("make mounts private");
    if (fchdir(rootfd) != 0 || chroot(".") != 0 || chdir("/") != 0)
        child_fail("chroot into the rootfs");
    mask("/proc");
    mask("/sys");
    struct rlimit cpu = {10, 10}, fsize = {16u << 20, 16u << 20}, nofile = {64, 64}, core = {0, 0};
    if (setrlimit(RLIMIT_CPU, &cpu) || setrlimit(RLIMIT_FSIZE, &fsize) || setrlimit(RLIMIT_NOFILE, &nofile) ||
        setrlimit(RLIMIT_CORE, &core))
        child_fail("setrlimit");
    if (dup2(2, 1) < 0) /* our stdout belongs to runc's hook protocol: ldconfig prints nothing there */
        child_fail("dup2");
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    confine_ldconfig();
    syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
    child_fail("execveat");
}

static void run_ldconfig(int rootfd, int mfd, const char **dirs, int ndirs)
{
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("ldconfig", "fork: %s", strerror(errno));
    if (pid == 0)
        ldconfig_child(rootfd, mfd, dirs, ndirs, parent, &old);

    struct timespec deadline, now;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += LDCONFIG_TIMEOUT_S;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            die("ldconfig", "waitpid: %s", strerror(errno));
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec left = {deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            die("ldconfig", "did not finish within %d s (killed)", LDCONFIG_TIMEOUT_S);
        }
        sigtimedwait(&chld, NULL, &left);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_REPORTED)
        exit(1);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        die("ldconfig", "exited with status %d (its messages are above)", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        die("ldconfig", "killed by signal %d", WTERMSIG(status));
}

/* ---- main --------------------------------------------------------------------------------------------- */

int exists_in_root(int rootfd, const char *path)
{
    int fd = inroot_open(rootfd, path, O_PATH);
    if (fd >= 0) {
        close(fd);
        return 1;
    }
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    die("rootfs", "%s: %s", path, strerror(errno));
}

/*
 * Containers created from one rootfs at once would run ldconfig over the same /etc concurrently, and ldconfig's
 * fixed temp name (/etc/ld.so.cache~) makes all but one fail. An exclusive flock on the rootfs directory itself
 * (the same inode in every mount namespace; nothing is created in the image) serialises us per rootfs. It is
 * released when we exit.
 */
static void lock_rootfs(int rootfd)
{
    int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die("rootfs", "cannot open it to lock it: %s", strerror(errno));
    for (int waited_ms = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited_ms += 10) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            die("rootfs", "flock: %s", strerror(errno));
        if (waited_ms >= LDCONFIG_TIMEOUT_S * 1000)
            die("rootfs", "another container's hook has held the rootfs for %d s", LDCONFIG_TIMEOUT_S);
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
}

/* "<prog>: debug: ..." on stderr when NVIDIA_RUNTIME_HOOK_DEBUG=1 (the tests' marker for which path ran). */
static void debug(const char *fmt, ...)
{
    const char *d = getenv("NVIDIA_RUNTIME_HOOK_DEBUG");
    if (!d || strcmp(d, "1") != 0)
        return;
    char msg[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    one_line(msg);
    fprintf(stderr, "%s: debug: %s\n", hook_prog, msg);
}

/* The ld.so.cache fast path (ldcache_fast.c, README.md): 1 when it wrote the cache, 0 when ldconfig must run.
 * compat_active: CUDA forward compat put the image's compat dir first (a 00-compat conf or a command-line folder),
 * which only ldconfig orders; --cuda-compat that found nothing newer changed nothing and does not decline. */
static int fast_ldcache(int rootfd, int mfd, struct args *a, int compat_active)
{
    char why[1024] = "";
    const char *folders[MAX_ITEMS], *others[MAX_KNOWN];
    int nfolders = 0, nothers = 0;
    if (a->ldconfig_only || (getenv("NVIDIA_RUNTIME_HOOK_LDCONFIG_ONLY") &&
                             strcmp(getenv("NVIDIA_RUNTIME_HOOK_LDCONFIG_ONLY"), "1") == 0)) {
        debug("ld.so.cache: ldconfig (forced)");
        return 0;
    }
    if (compat_active) {
        debug("ld.so.cache: ldconfig (--cuda-compat: the image's compat libraries are newer than the driver)");
        return 0;
    }
    struct conf c = {0};
    load_conf(rootfd, &c);
    if (c.unusual || c.nknown >= MAX_KNOWN) {
        debug("ld.so.cache: ldconfig (ld.so.conf: a =TYPE suffix, a relative dir, another include or a "
              "00-compat-*.conf)");
        return 0;
    }
    for (int i = 0; i < a->nfolders; i++) {
        char *dir = normalize(strdup(a->folders[i]));
        if (!listed(folders, nfolders, dir))
            folders[nfolders++] = dir;
    }
    for (int i = 0; i < c.nknown; i++)
        if (!listed(others, nothers, c.known[i]) && !listed(folders, nfolders, c.known[i]))
            others[nothers++] = c.known[i];
    /* ldconfig's built-in directories on multiarch builds (Debian's slibdir/libdir), checked for aliases too. */
    static const char *const builtin[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/i386-linux-gnu",
                                          "/usr/lib/i386-linux-gnu", "/lib32", "/usr/lib32"};
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin && nothers < MAX_KNOWN; i++)
        if (!listed(others, nothers, builtin[i]) && !listed(folders, nfolders, builtin[i]))
            others[nothers++] = builtin[i];
    for (int i = 0; i < c.nours && nothers < MAX_KNOWN; i++)
        if (!listed(others, nothers, c.ours[i]) && !listed(folders, nfolders, c.ours[i]))
            others[nothers++] = c.ours[i];
    if (ldcache_fast(rootfd, mfd, folders, nfolders, others, nothers, why, sizeof why) == 0) {
        debug("ld.so.cache: fast path");
        return 1;
    }
    debug("ld.so.cache: ldconfig (%s)", why);
    return 0;
}

int update_ldcache_in(int rootfd, struct args *a)
{
    const char *dirs[MAX_ITEMS + 1], **missing = dirs;
    /* No ld.so.cache and no ld.so.conf: not a glibc image (busybox, musl): no ldconfig, nothing written but the
     * links (a GPU's /dev/dri/by-path links matter in any image). */
    if (!exists_in_root(rootfd, "/etc/ld.so.cache") && !exists_in_root(rootfd, "/etc/ld.so.conf")) {
        make_links_in(rootfd, a);
        return 0;
    }
    int mfd = sealed_ldconfig(a->ldconfig); /* validated before the rootfs is touched */
    lock_rootfs(rootfd);
    make_links_in(rootfd, a);
    /* CUDA forward compat: 00-compat-<major>.conf when conf.d is read, else the compat dir first on the command
     * line (ldconfig puts the entries of command-line folders first; the loader takes the first one). */
    int compat_active = 0;
    if (a->compat_version) {
        int confd = confd_included(rootfd);
        compat_active = cuda_compat_in(rootfd, "--cuda-compat", a->host_major, a->compat_dir, confd);
        if (compat_active && !confd)
            *missing++ = a->compat_dir;
    }
    int nmissing = update_conf(rootfd, a, missing);
    if (fast_ldcache(rootfd, mfd, a, compat_active))
        return 0;
    run_ldconfig(rootfd, mfd, dirs, (int)(missing - dirs) + nmissing);
    return 0;
}

static int open_root(struct args *a, struct buf state)
{
    int rootfd = a->root ? open(a->root, O_PATH | O_DIRECTORY | O_CLOEXEC) : rootfs_from_state(state);
    if (rootfd < 0)
        die("--root", "%s: %s", a->root, strerror(errno));
    return rootfd;
}

static int update_ldcache(int argc, char **argv, struct buf state)
{
    struct args a = {0};
    parse_args(argc, argv, &a, 0);
    return update_ldcache_in(open_root(&a, state), &a);
}

/* The links alone, in any image (no ldconfig): a per-device CDI edit (a GPU's /dev/dri/by-path links). */
static int create_symlinks(int argc, char **argv, struct buf state)
{
    struct args a = {0};
    parse_args(argc, argv, &a, 1);
    if (a.nlinks == 0)
        return 0;
    int rootfd = open_root(&a, state);
    struct stat r, h;
    if (fstat(rootfd, &r) != 0 || stat("/", &h) != 0)
        die("rootfs", "%s", strerror(errno));
    if (r.st_dev == h.st_dev && r.st_ino == h.st_ino)
        die("rootfs", "the container rootfs is the host's /: refusing to write into it");
    make_links_in(rootfd, &a);
    return 0;
}

/* The grammar is chosen by the name we were run as: CDI specs written by NVIDIA's `nvidia-ctk cdi generate`
 * run /usr/bin/nvidia-cdi-hook with args[0] "nvidia-cdi-hook" (a link to this binary); the subcommand is
 * argv[1] either way. Both have an update-ldcache, with different flags, so argv[1] alone cannot decide. */
static int is_cdi_hook(const char *argv0)
{
    const char *base = argv0 ? strrchr(argv0, '/') : NULL;
    base = base ? base + 1 : argv0;
    return base && strcmp(base, "nvidia-cdi-hook") == 0;
}

int main(int argc, char **argv)
{
    static const char *const loader_vars[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"};
    int cdi = argc > 0 && is_cdi_hook(argv[0]);
    if (cdi)
        hook_prog = "nvidia-cdi-hook";
    if (chdir("/") != 0)
        die("chdir /", "%s", strerror(errno));
    for (size_t i = 0; i < sizeof loader_vars / sizeof *loader_vars; i++)
        if (getenv(loader_vars[i]))
            die("environment", "%s is set; the hook must run with the explicit env of its hook entry",
                loader_vars[i]);
    struct buf state = read_state();
    if (cdi)
        return cdi_main(argc, argv, state);
    if (argc < 2)
        die("usage", "nvidia-runtime-hook update-ldcache [--root <rootfs>] [--folder DIR]... "
                     "[--link TARGET::LINK]... [--ldconfig PATH] [--cuda-compat HOST_DRIVER_VERSION "
                     "[--cuda-compat-dir DIR]] | create-symlinks [--root <rootfs>] --link TARGET::LINK...");
    if (strcmp(argv[1], "update-ldcache") == 0)
        return update_ldcache(argc, argv, state);
    if (strcmp(argv[1], "create-symlinks") == 0)
        return create_symlinks(argc, argv, state);
    if (strcmp(argv[1], "apply-edits") == 0) /* stdin is the plan, not an OCI state */
        return apply_main(argc, argv, state);
    warn("unknown subcommand '%s' ignored (written for a newer runtime? the toolkit's CDI hooks run as "
         "nvidia-cdi-hook)", argv[1]);
    return 0;
}
