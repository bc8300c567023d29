/* What hook.c (nvidia-runtime-hook: state, rootfs, ld.so.conf, ldconfig) shares with cdi_hook.c (the
 * nvidia-cdi-hook grammar and subcommands). One static binary; argv[0]'s basename picks the grammar. */
#ifndef NVR_HOOK_H
#define NVR_HOOK_H
#include <limits.h>
#include <stddef.h>

#define MAX_ITEMS 64 /* --folder / --link / --path */
#define DEFAULT_COMPAT_DIR "/usr/local/cuda/compat"

/* "nvidia-runtime-hook" or "nvidia-cdi-hook": the first word of every message. */
extern const char *hook_prog;

/* "<prog>: <what>: <why>" on one line (control characters become '?'), exit 1. */
__attribute__((noreturn, format(printf, 2, 3))) void die(const char *what, const char *fmt, ...);
/* "<prog>: warning: <message>" on one line; the hook goes on. */
__attribute__((format(printf, 1, 2))) void warn(const char *fmt, ...);

struct buf {
    char *data;
    size_t len;
};

/* What update-ldcache does, whichever grammar asked for it. */
struct args {
    const char *root, *ldconfig;
    const char *folders[MAX_ITEMS];
    int nfolders;
    const char *link_target[MAX_ITEMS], *link_path[MAX_ITEMS];
    int nlinks;
    /* --cuda-compat: the host driver's version (NULL: no forward-compat step), its major, and the compat dir in
     * the rootfs (clean, absolute). */
    const char *compat_version, *compat_dir;
    long host_major;
    int ldconfig_only; /* --ldconfig-only: never the ld.so.cache fast path */
};

/* Called with every path (inside the rootfs) that the ld cache step creates, after it is created: a directory
 * (is_dir), a link or a file that did not exist before. apply.c sets it to undo them on a failure; NULL elsewhere. */
extern void (*hook_created)(const char *path, int is_dir);

/* O_PATH fd of the rootfs named by the OCI state (bundle -> config.json -> root.path). */
int rootfs_from_state(struct buf state);
/* 1 / 0 whether path exists inside the rootfs (links followed inside it); dies on other errors. */
int exists_in_root(int rootfd, const char *path);
/* A whole regular file inside the rootfs (at most 1 MiB), NUL-terminated; NULL when absent or not regular. */
char *read_in_root(int rootfd, const char *path);
/* Replaces path inside the rootfs with text: O_EXCL temp file in the same directory, fsync, rename, 0644. */
void write_atomic(int rootfd, const char *path, const char *text);
/* The directory dir (absolute) inside the rootfs, its missing components created one at a time with mkdirat(0755)
 * on the fd of the prefix before them (each prefix resolved by inroot_open: a symlink met on the way is followed
 * inside the rootfs only). A dangling (in-root) symlink or a non-directory on the way is an error naming it
 * (die(what, ...)). Every directory made is reported to hook_created. Returns an O_PATH|O_DIRECTORY fd. */
int mkdir_in_root(int rootfd, const char *what, const char *dir);
/* in made absolute and cleaned lexically (empty and "." components dropped, ".." never above "/"). */
void clean_path(const char *what, const char *in, char out[PATH_MAX]);
/* The major of a driver version ("550.54.15" -> 550): the digits before the first '.'; -1 when not numeric. */
long major_of(const char *version);
/*
 * CUDA forward compatibility (enable-cuda-compat's rule, README.md): dir (clean, absolute, resolved in the rootfs;
 * NULL: not applicable) holds exactly one regular libcuda.so.*.* whose major is greater than host_major → returns 1,
 * and with use_confd /etc/ld.so.conf.d/00-compat-<major>.conf lists dir. Otherwise returns 0. In every case but
 * (1, use_confd) any 00-compat-*.conf that starts with a header of ours (nvidia-cdi-hook's or nvidia-runtime-hook's,
 * whichever wrote it) is removed. Messages start with what.
 */
int cuda_compat_in(int rootfd, const char *what, long host_major, const char *dir, int use_confd);
/* --link: every link of a, missing parents created (mkdir_in_root); no ldconfig. */
void make_links_in(int rootfd, struct args *a);
/* Steps 4-9 of README.md's order of work on an open rootfs: links, CUDA compat, ld.so.conf.d, ldconfig. */
int update_ldcache_in(int rootfd, struct args *a);

/* apply-edits (apply.c): the live applier behind nvidia-container-cli configure; stdin is its plan. */
int apply_main(int argc, char **argv, struct buf plan);

/* nvidia-cdi-hook: argv[1] is the subcommand. */
int cdi_main(int argc, char **argv, struct buf state);
#endif
