/* What hook.c (nvidia-runtime-hook: state, rootfs, ld.so.conf, ldconfig) shares with cdi_hook.c (the
 * nvidia-cdi-hook grammar and subcommands). One static binary; argv[0]'s basename picks the grammar. */
#ifndef NVR_HOOK_H
#define NVR_HOOK_H
#include <stddef.h>

#define MAX_ITEMS 64 /* --folder / --link / --path */

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
};

/* O_PATH fd of the rootfs named by the OCI state (bundle -> config.json -> root.path). */
int rootfs_from_state(struct buf state);
/* 1 / 0 whether path exists inside the rootfs (links followed inside it); dies on other errors. */
int exists_in_root(int rootfd, const char *path);
/* A whole regular file inside the rootfs (at most 1 MiB), NUL-terminated; NULL when absent or not regular. */
char *read_in_root(int rootfd, const char *path);
/* Replaces path inside the rootfs with text: O_EXCL temp file in the same directory, fsync, rename, 0644. */
void write_atomic(int rootfd, const char *path, const char *text);
/* Steps 4-8 of README.md's order of work on an open rootfs: links, ld.so.conf.d, ldconfig. */
int update_ldcache_in(int rootfd, struct args *a);

/* apply-edits (apply.c): the live applier behind nvidia-container-cli configure; stdin is its plan. */
int apply_main(int argc, char **argv, struct buf plan);

/* nvidia-cdi-hook: argv[1] is the subcommand. */
int cdi_main(int argc, char **argv, struct buf state);
#endif
