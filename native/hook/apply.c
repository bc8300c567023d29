/*
 * nvidia-runtime-hook apply-edits: the live applier. It puts computed container edits into a container that
 * already exists: `nvidia-container-cli configure` (run by the prestart hook that `docker run --gpus` inserts, by
 * LXC's mount hook, or by hand) computes the edits in TypeScript and runs this with them. It decides nothing: the
 * plan on stdin says exactly what to create, bind and allow.
 *
 *   nvidia-runtime-hook apply-edits [--pid PID] --rootfs ROOTFS [--devices-cgroup DIR]
 *
 * ROOTFS is the container's rootfs as a path in the mount namespace of PID (without --pid: the one we run in, as
 * for an LXC mount hook), before pivot_root (where runc runs
 * prestart hooks and LXC runs mount hooks: the host's files are still visible there). stdin is the plan: NUL-
 * terminated words, one operation after another, done in this order:
 *   mknod  <c|b> <major> <minor> <mode, octal> <path>      a device node in the rootfs
 *   bind   <flags> <host path> <path>                      a bind mount; flags: comma list of ro nosuid nodev noexec
 *   allow  <rule>                                          a device cgroup v1 rule ("c 195:0 rwm"), --devices-cgroup
 *   folder <dir> | link <target> <link> | ldconfig <path>  the ld cache refresh (update-ldcache's --folder/--link/
 *   compat <host driver version> | compatdir <dir>         --ldconfig/--cuda-compat/--cuda-compat-dir), run last:
 *                                                          the whole refresh when a folder or compat is given, else
 *                                                          the links alone (no ldconfig)
 *
 * Order of work: the whole plan is checked first; the device cgroup rules (only those the cgroup lacks: TypeScript
 * compared them with devices.list) are written from the host side; then
 * the process joins PID's mount namespace (setns needs a single-threaded process: this one is) and does the nodes,
 * the mounts and the ld cache there, every rootfs path resolved by inroot.c and created with *at() calls. Mounts are
 * made with the new mount API: the source is cloned, made read-only/nosuid/nodev/private while still detached,
 * then moved onto the target fd, so there is never a writable window and no path is looked up twice. A target
 * under a shared mount (the mount would propagate out of the container) is refused.
 * Any failure undoes what was done (mounts detached, files, nodes, links and directories we created removed, cgroup
 * rules we added denied again) and exits 1 with one line: nothing is left half-applied.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hook.h"
#include "inroot.h"

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

#define MAX_OPS 4096
#define MAX_UNDO (MAX_OPS * 8)

enum kind { MKNOD, BIND, ALLOW };

struct op {
    enum kind kind;
    char type;            /* mknod: 'c' or 'b' */
    unsigned major, minor;
    mode_t mode;
    unsigned long long attr; /* bind: MOUNT_ATTR_* */
    const char *host;     /* bind: source on the host */
    const char *path;     /* mknod, bind: path inside the rootfs (absolute, clean) */
    const char *rule;     /* allow */
};

/* What we did, in order, so a failure can undo it in reverse. */
enum undo_kind { U_MOUNT, U_FILE, U_DIR, U_ALLOW };
struct undo {
    enum undo_kind kind;
    char *what; /* path inside the rootfs, or the cgroup rule */
};

static struct undo g_undo[MAX_UNDO];
static int g_nundo;
static int g_rootfd = -1, g_denyfd = -1, g_committed;

static void remember(enum undo_kind kind, const char *what)
{
    if (g_nundo == MAX_UNDO)
        die("apply-edits", "too many changes to track");
    if (!(g_undo[g_nundo].what = strdup(what)))
        die("apply-edits", "out of memory");
    g_undo[g_nundo++].kind = kind;
}

/* hook_created: what the ld cache step creates (parent directories of links, links, conf.d and its files). */
static void created_by_ld_step(const char *path, int is_dir) { remember(is_dir ? U_DIR : U_FILE, path); }

/* atexit: after a die() anywhere (our checks, the ld cache refresh), leave the container as we found it. */
static void roll_back(void)
{
    if (g_committed)
        return;
    for (int i = g_nundo - 1; i >= 0; i--) {
        struct undo *u = &g_undo[i];
        if (u->kind == U_ALLOW) {
            if (g_denyfd >= 0 && write(g_denyfd, u->what, strlen(u->what)) < 0)
                fprintf(stderr, "%s: warning: could not deny %s again: %s\n", hook_prog, u->what, strerror(errno));
            continue;
        }
        if (g_rootfd < 0)
            continue;
        if (u->kind == U_MOUNT) {
            int fd = inroot_open(g_rootfd, u->what, O_PATH | O_NOFOLLOW);
            char p[32];
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            if (fd < 0 || umount2(p, MNT_DETACH) != 0)
                fprintf(stderr, "%s: warning: could not unmount %s: %s\n", hook_prog, u->what, strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        char leaf[NAME_MAX + 1];
        int dfd = inroot_open_parent(g_rootfd, u->what, leaf);
        if (dfd < 0 || unlinkat(dfd, leaf, u->kind == U_DIR ? AT_REMOVEDIR : 0) != 0)
            fprintf(stderr, "%s: warning: could not remove %s: %s\n", hook_prog, u->what, strerror(errno));
        if (dfd >= 0)
            close(dfd);
    }
}

/* ---- the plan ----------------------------------------------------------------------------------------------- */

struct plan {
    struct op ops[MAX_OPS];
    int nops, nallow;
    struct args ld;
    const char *compat_dir; /* compatdir, cleaned into ld.compat_dir once the plan is read */
};

static const char *next_word(struct buf *b, size_t *at, const char *op)
{
    if (*at >= b->len)
        die("plan", "%s: missing a word at the end of the plan", op);
    const char *w = b->data + *at;
    const char *nul = memchr(w, '\0', b->len - *at);
    if (!nul)
        die("plan", "the plan does not end with a NUL byte");
    *at += (size_t)(nul - w) + 1;
    return w;
}

static unsigned parse_uint(const char *w, int base, unsigned max, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(w, &end, base);
    if (!*w || *end || errno || v > max || w[0] == '-' || w[0] == '+' || w[0] == ' ')
        die("plan", "%s '%s' is not a number up to %u", what, w, max);
    return (unsigned)v;
}

/* Absolute, no empty, "." or ".." component: what TypeScript sends; anything else is a bug we refuse. */
static const char *clean_abs(const char *p, const char *what)
{
    if (p[0] != '/' || p[1] == '\0')
        die("plan", "%s '%s' is not an absolute path below /", what, p);
    for (const char *c = p; *c;) {
        const char *e = strchrnul(c + 1, '/');
        size_t n = (size_t)(e - c - 1);
        if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
            die("plan", "%s '%s' is not a clean path (empty, . or .. component)", what, p);
        if (n > NAME_MAX)
            die("plan", "%s '%s' has a name longer than %d bytes", what, p, NAME_MAX);
        c = e;
    }
    if (strlen(p) >= PATH_MAX)
        die("plan", "%s is longer than %d bytes", what, PATH_MAX);
    return p;
}

static unsigned long long parse_flags(const char *w)
{
    unsigned long long attr = 0;
    char copy[64];
    if (strlen(w) >= sizeof copy)
        die("plan", "bind flags '%s' too long", w);
    strcpy(copy, w);
    for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        if (strcmp(f, "ro") == 0)
            attr |= MOUNT_ATTR_RDONLY;
        else if (strcmp(f, "nosuid") == 0)
            attr |= MOUNT_ATTR_NOSUID;
        else if (strcmp(f, "nodev") == 0)
            attr |= MOUNT_ATTR_NODEV;
        else if (strcmp(f, "noexec") == 0)
            attr |= MOUNT_ATTR_NOEXEC;
        else
            die("plan", "unknown bind flag '%s' (known: ro, nosuid, nodev, noexec)", f);
    }
    if (!(attr & MOUNT_ATTR_NOSUID))
        die("plan", "bind flags '%s' lack nosuid: every mount into a container is nosuid", w);
    return attr;
}

static void parse_plan(struct buf *b, struct plan *p)
{
    size_t at = 0;
    while (at < b->len) {
        const char *verb = next_word(b, &at, "plan");
        if (strcmp(verb, "folder") == 0 || strcmp(verb, "link") == 0 || strcmp(verb, "ldconfig") == 0 ||
            strcmp(verb, "compat") == 0 || strcmp(verb, "compatdir") == 0) {
            const char *v = next_word(b, &at, verb);
            if (strcmp(verb, "folder") == 0) {
                if (p->ld.nfolders == MAX_ITEMS)
                    die("plan", "more than %d folders", MAX_ITEMS);
                p->ld.folders[p->ld.nfolders++] = clean_abs(v, "folder");
            } else if (strcmp(verb, "ldconfig") == 0) {
                p->ld.ldconfig = clean_abs(v, "ldconfig");
            } else if (strcmp(verb, "compat") == 0) {
                if ((p->ld.host_major = major_of(v)) < 0)
                    die("plan", "compat '%s' has no numeric major version: give the host driver's version, e.g. "
                                "550.54.15", v);
                p->ld.compat_version = v;
            } else if (strcmp(verb, "compatdir") == 0) {
                p->compat_dir = clean_abs(v, "compatdir");
            } else {
                if (p->ld.nlinks == MAX_ITEMS)
                    die("plan", "more than %d links", MAX_ITEMS);
                /* The target is only the text of the link (resolved in the container when it is used): any
                 * non-empty one, e.g. ../card2 for /dev/dri/by-path, ../libnvidia-allocator.so.1 for gbm/. */
                if (!*v || strlen(v) >= PATH_MAX)
                    die("plan", "link target '%.100s' is empty or too long", v);
                p->ld.link_target[p->ld.nlinks] = v;
                p->ld.link_path[p->ld.nlinks++] = clean_abs(next_word(b, &at, verb), "link");
            }
            continue;
        }
        if (p->nops == MAX_OPS)
            die("plan", "more than %d operations", MAX_OPS);
        struct op *o = &p->ops[p->nops++];
        memset(o, 0, sizeof *o);
        if (strcmp(verb, "mknod") == 0) {
            const char *t = next_word(b, &at, verb);
            if (strcmp(t, "c") != 0 && strcmp(t, "b") != 0)
                die("plan", "mknod type '%s' is not c or b", t);
            o->kind = MKNOD;
            o->type = t[0];
            o->major = parse_uint(next_word(b, &at, verb), 10, 4095, "major");
            o->minor = parse_uint(next_word(b, &at, verb), 10, 1048575, "minor");
            o->mode = (mode_t)parse_uint(next_word(b, &at, verb), 8, 0777, "mode");
            o->path = clean_abs(next_word(b, &at, verb), "node path");
        } else if (strcmp(verb, "bind") == 0) {
            o->kind = BIND;
            o->attr = parse_flags(next_word(b, &at, verb));
            o->host = clean_abs(next_word(b, &at, verb), "bind source");
            o->path = clean_abs(next_word(b, &at, verb), "bind target");
        } else if (strcmp(verb, "allow") == 0) {
            o->kind = ALLOW;
            o->rule = next_word(b, &at, verb);
            char type, perm[8];
            unsigned maj, min;
            int used = 0;
            if (sscanf(o->rule, "%c %u:%u %7[rwm]%n", &type, &maj, &min, perm, &used) != 4 ||
                (size_t)used != strlen(o->rule) || (type != 'c' && type != 'b'))
                die("plan", "device rule '%s' is not '<c|b> MAJOR:MINOR <rwm>'", o->rule);
            p->nallow++;
        } else {
            die("plan", "unknown operation '%s'", verb);
        }
    }
    if (p->compat_dir && !p->ld.compat_version)
        die("plan", "compatdir without compat: it would be ignored");
    if (p->ld.compat_version)
        p->ld.compat_dir = p->compat_dir ? p->compat_dir : DEFAULT_COMPAT_DIR;
}

/* ---- device cgroup v1 (host side, before setns) ------------------------------------------------------------- */

/* Writes every rule; TypeScript left out those the cgroup already grants, so each one written is ours to deny again. */
static void allow_devices(const char *dir, struct plan *p)
{
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        die("cgroup", "%s: %s (use --no-cgroups where the container's device cgroup is not ours to change)", dir,
            strerror(errno));
    int afd = openat(dfd, "devices.allow", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    g_denyfd = openat(dfd, "devices.deny", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (afd < 0 || g_denyfd < 0)
        die("cgroup", "%s/devices.allow: %s (an unprivileged or nested container cannot change its device rules: "
                      "pass --no-cgroups)", dir, strerror(errno));
    for (int i = 0; i < p->nops; i++) {
        struct op *o = &p->ops[i];
        if (o->kind != ALLOW)
            continue;
        if (write(afd, o->rule, strlen(o->rule)) < 0)
            die("cgroup", "%s/devices.allow: cannot add '%s': %s", dir, o->rule, strerror(errno));
        remember(U_ALLOW, o->rule);
    }
    close(afd);
    close(dfd);
}

/* ---- inside the container's mount namespace ----------------------------------------------------------------- */

static void join_mount_ns(const char *pid)
{
    char path[64];
    struct stat self, target;
    snprintf(path, sizeof path, "/proc/%s/ns/mnt", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &target) != 0)
        die("--pid", "%s: %s (is the container's process still there?)", path, strerror(errno));
    if (stat("/proc/self/ns/mnt", &self) != 0)
        die("--pid", "/proc/self/ns/mnt: %s", strerror(errno));
    if ((self.st_dev != target.st_dev || self.st_ino != target.st_ino) && setns(fd, CLONE_NEWNS) != 0)
        die("--pid", "cannot join the mount namespace of process %s: %s", pid, strerror(errno));
    close(fd);
}

/* 1 when the mount that holds fd propagates its events to a peer group (mountinfo's "shared:N"). */
static int under_shared_mount(int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID))
        die("mount", "cannot find which mount holds a target: %s", strerror(errno));
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        die("mount", "/proc/self/mountinfo: %s", strerror(errno));
    char line[8192];
    int shared = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long id;
        if (sscanf(line, "%llu", &id) != 1 || id != sx.stx_mnt_id)
            continue;
        char *sep = strstr(line, " - ");
        char *opt = strstr(line, " shared:");
        shared = opt && sep && opt < sep;
        break;
    }
    fclose(f);
    return shared;
}

/* The directory dir inside the rootfs, created like `mkdir -p` (0755); every directory made is remembered. */
static int mkdir_p(const char *dir)
{
    char prefix[PATH_MAX];
    int fd = openat(g_rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    size_t len = 0;
    for (const char *c = dir; *c && fd >= 0;) {
        const char *e = strchrnul(c + 1, '/');
        memcpy(prefix + len, c, (size_t)(e - c));
        len += (size_t)(e - c);
        prefix[len] = '\0';
        int next = inroot_open(g_rootfd, prefix, O_PATH | O_DIRECTORY);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(fd, strrchr(prefix, '/') + 1, 0755) != 0)
                die("rootfs", errno == EEXIST ? "%s is a symbolic link that leads nowhere inside the rootfs: fix the "
                                                "image (a directory is needed there)" : "cannot create %s: %s",
                    prefix, strerror(errno));
            remember(U_DIR, prefix);
            next = inroot_open(g_rootfd, prefix, O_PATH | O_DIRECTORY);
        }
        if (next < 0)
            die("rootfs", "%s: %s%s", prefix, strerror(errno),
                errno == ENOTDIR || errno == ENOENT ? " (the image has a file or a dangling link there)" : "");
        close(fd);
        fd = next;
        c = e;
    }
    return fd;
}

/* The parent of path (created), and path's last component in leaf. */
static int parent_of(const char *path, char leaf[NAME_MAX + 1])
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    strcpy(leaf, slash + 1);
    if (slash == path)
        return openat(g_rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return mkdir_p(dir);
}

static void make_node(const struct op *o)
{
    char leaf[NAME_MAX + 1];
    int dfd = parent_of(o->path, leaf);
    dev_t want = makedev(o->major, o->minor);
    mode_t type = o->type == 'c' ? S_IFCHR : S_IFBLK;
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if ((st.st_mode & S_IFMT) == type && st.st_rdev == want) { /* runc or an earlier configure made it */
            close(dfd);
            return;
        }
        die("mknod", "%s already exists in the rootfs and is not device %c %u:%u: remove it from the image",
            o->path, o->type, o->major, o->minor);
    }
    if (mknodat(dfd, leaf, type | o->mode, want) != 0)
        die("mknod", "%s: %s%s", o->path, strerror(errno),
            errno == EPERM ? " (in a user namespace nodes are bind-mounted: configure --user decides that)" : "");
    remember(U_FILE, o->path);
    if (fchmodat(dfd, leaf, o->mode, 0) != 0)
        die("mknod", "chmod %s: %s", o->path, strerror(errno));
    close(dfd);
}

/* The mount point for a source of this type: an empty file or directory we create, or one already there. */
static int mount_point(const struct op *o, int dir)
{
    char leaf[NAME_MAX + 1];
    int dfd = parent_of(o->path, leaf);
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            die("mount", "%s: %s", o->path, strerror(errno));
        if (dir ? mkdirat(dfd, leaf, 0755) != 0 : mknodat(dfd, leaf, S_IFREG | 0644, 0) != 0)
            die("mount", "cannot create the mount point %s: %s", o->path, strerror(errno));
        remember(dir ? U_DIR : U_FILE, o->path);
    } else if (S_ISLNK(st.st_mode)) {
        die("mount", "%s in the rootfs is a symbolic link: refusing to mount through it; remove it from the image",
            o->path);
    } else if ((S_ISDIR(st.st_mode) ? 1 : 0) != dir) {
        die("mount", "%s in the rootfs is a %s, the host's %s is not", o->path, dir ? "file" : "directory", o->host);
    }
    int fd = openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        die("mount", "%s: %s", o->path, strerror(errno));
    close(dfd);
    return fd;
}

static void bind_one(const struct op *o)
{
    struct stat st;
    int src = open_tree(AT_FDCWD, o->host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (src < 0 || fstat(src, &st) != 0)
        die("mount", "%s: %s%s", o->host, strerror(errno),
            errno == ENOSYS ? " (needs Linux 5.12 or newer: open_tree, mount_setattr, move_mount)" : "");
    struct mount_attr attr = {.attr_set = o->attr, .propagation = MS_PRIVATE};
    if (mount_setattr(src, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
        die("mount", "%s: cannot make it read-only/nosuid/private: %s", o->host, strerror(errno));
    int target = mount_point(o, S_ISDIR(st.st_mode));
    if (under_shared_mount(target))
        die("mount", "%s is on a shared mount: the mount would propagate out of the container (make the "
                     "container's rootfs mount private or slave)", o->path);
    if (move_mount(src, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
        die("mount", "%s on %s: %s", o->host, o->path, strerror(errno));
    remember(U_MOUNT, o->path);
    close(target);
    close(src);
}

/* ---- main ------------------------------------------------------------------------------------------------- */

int apply_main(int argc, char **argv, struct buf plan_text)
{
    const char *pid = NULL, *rootfs = NULL, *cgroup = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            die("arguments", "%s needs a value", a);
        if (strcmp(a, "--pid") == 0)
            pid = argv[++i];
        else if (strcmp(a, "--rootfs") == 0)
            rootfs = argv[++i];
        else if (strcmp(a, "--devices-cgroup") == 0)
            cgroup = argv[++i];
        else
            die("arguments", "unknown option '%s'", a);
    }
    if (!rootfs)
        die("usage", "nvidia-runtime-hook apply-edits [--pid PID] --rootfs ROOTFS [--devices-cgroup DIR] < plan");
    if (pid)
        parse_uint(pid, 10, 1u << 22, "--pid");
    clean_abs(rootfs, "--rootfs");
    if (cgroup)
        clean_abs(cgroup, "--devices-cgroup");

    static struct plan p;
    parse_plan(&plan_text, &p);
    if (p.nallow > 0 && !cgroup)
        die("plan", "device rules without --devices-cgroup");
    umask(0);
    atexit(roll_back);

    if (cgroup)
        allow_devices(cgroup, &p);
    if (pid)
        join_mount_ns(pid);
    g_rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st, top;
    if (g_rootfd < 0 || fstat(g_rootfd, &st) != 0)
        die("rootfs", "%s in the container's mount namespace: %s (configure runs before pivot_root: from a prestart "
                      "or LXC mount hook)", rootfs, strerror(errno));
    if (stat("/", &top) == 0 && st.st_dev == top.st_dev && st.st_ino == top.st_ino)
        die("rootfs", "%s is the root of the mount namespace: refusing to change the host's /", rootfs);

    for (int i = 0; i < p.nops; i++)
        if (p.ops[i].kind == MKNOD)
            make_node(&p.ops[i]);
    for (int i = 0; i < p.nops; i++)
        if (p.ops[i].kind == BIND)
            bind_one(&p.ops[i]);
    hook_created = created_by_ld_step;
    if (p.ld.nfolders > 0 || p.ld.compat_version)
        update_ldcache_in(g_rootfd, &p.ld);
    else if (p.ld.nlinks > 0)
        make_links_in(g_rootfd, &p.ld);
    g_committed = 1;
    return 0;
}
