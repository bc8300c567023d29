/*
 * nvidia-runtime: the native front of the runtime. Docker/containerd/CRI-O call it exactly like runc, four or
 * more times per container, so it must cost almost nothing when there is nothing GPU-related to do. It decides
 * nothing itself: it execs runc directly only when it is *certain* that the TypeScript runtime would do exactly
 * that, and hands every other call to Node (native/launcher/README.md):
 *
 *   launcher view (written by the TypeScript runtime: its validated runc and GPU markers, with fingerprints of
 *   every file its decision read) missing, untrusted or stale                             -> Node
 *   argv outside the part of runc's grammar modelled here (launcher_contract.h)           -> Node
 *   verb that never creates a container                                                   -> execv(runc)
 *   create/run whose spec holds no GPU marker and no escape that could spell one          -> execv(runc)
 *   create/run going to Node only because its spec holds a GPU marker: ask the service first (serve_client.c,
 *   docs/warm-path.md); a usable answer -> (write config.json atomically,) execv(runc); else -> Node
 *   anything else                                                                         -> Node
 *
 * Guessing wrong toward Node costs a Node start; guessing wrong toward runc would lose a GPU, so every doubt goes
 * to Node. The pass-through path allocates nothing on the heap. Invoked as `nvidia-runtime-decide` (a link to this
 * binary), it prints its decision instead of acting on it (`nvidia-ctk explain` and the tests use that).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/memfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/launcher_contract.h" /* generated from src/runtime/launcher-contract.json */
#include "serve_client.h"

#ifndef NODE_EXECUTABLE
#error "define NODE_EXECUTABLE: the absolute path of the node binary the runtime was built for"
#endif
/* Where Node is looked for, in order: the node the runtime was built with, then the contract's fixed fallbacks. Never
 * a PATH lookup: the caller's environment must not choose what runs as root. Tests compile their own list. */
#ifndef NVR_NODE_CANDIDATES
#define NVR_NODE_CANDIDATES NODE_EXECUTABLE, NVR_NODE_FALLBACKS
#endif

#define MAX_MARKERS 256

extern char **environ;

static char g_reason[PATH_MAX + 256]; /* why the call goes to Node */
static char g_view[NVR_VIEW_MAX_BYTES + 1];
static const char *g_runc;            /* from the view */
static const char *g_markers[MAX_MARKERS];
static size_t g_marker_count;
static const char *g_bundle;          /* create/run: the bundle scanned */
static struct stat g_spec_st;         /* and its config.json */
static const char *g_log, *g_log_format; /* runc's --log and --log-format (the last of each), for the warm path's errors */
static int g_warm;                    /* 1: Node only because the spec holds a GPU marker (the warm path may answer) */

/* Records why this call goes to Node; returns 0 so callers can `return to_node(...)`. */
__attribute__((format(printf, 1, 2))) static int to_node(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_reason, sizeof g_reason, fmt, ap);
    va_end(ap);
    for (char *p = g_reason; *p; p++) /* one line, whatever a path in it holds */
        if ((unsigned char)*p < 0x20)
            *p = '?';
    return 0;
}

/* ---- the launcher view --------------------------------------------------------------------------------- */

/* FNV-1a 64 over the key fields; src/runtime/launcher-view.ts computes the same name. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The identity of a stat(2) result: "dev,ino,mode,uid,size,mtime_ns,ctime_ns" (src/launcher-contract.ts). */
void nvr_format_identity(const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%llu,%llu,%u,%u,%lld,%lld,%lld", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
             (unsigned)st->st_mode, (unsigned)st->st_uid, (long long)st->st_size,
             (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec,
             (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec);
}

/* stat(2) identity as the view writes it, "-" when absent. */
static void identity(const char *path, char *out, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(out, n, "%s", errno == ENOENT || errno == ENOTDIR ? "-" : "?");
        return;
    }
    nvr_format_identity(&st, out, n);
}

/* Owned by root (or by us) and writable by nobody else: the rule for every file that decides what runs. */
int nvr_trusted(const struct stat *st)
{
    return (st->st_uid == 0 || st->st_uid == geteuid()) && !(st->st_mode & NVR_UNTRUSTED_MODE_BITS);
}

/*
 * The view for this caller (euid, config file, PATH: what the TypeScript decision depended on), checked field by
 * field. Records, each NUL-terminated: the magic, u<euid>, c<config>, p<PATH> or P (unset), f<identity>:<path>
 * (one per file the decision read), r<runc>, m<marker> (one per marker), and "." last. 1 when usable.
 */
static int load_view(void)
{
    const char *config = getenv(NVR_CONFIG_ENV);
    if (!config || !*config)
        config = NVR_DEFAULT_CONFIG;
    else if (config[0] != '/')
        return to_node("%s is not an absolute path", NVR_CONFIG_ENV);
    const char *path = getenv("PATH");
    char euid[24];
    snprintf(euid, sizeof euid, "u%u", (unsigned)geteuid());

    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, euid, strlen(euid) + 1);
    h = fnv1a(h, "c", 1);
    h = fnv1a(h, config, strlen(config) + 1);
    if (path) {
        h = fnv1a(h, "p", 1);
        h = fnv1a(h, path, strlen(path) + 1);
    } else {
        h = fnv1a(h, "P", 2);
    }
    char name[32];
    snprintf(name, sizeof name, "%016llx.view", (unsigned long long)h);

    int dfd = open(NVR_VIEW_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (dfd < 0 || fstat(dfd, &st) != 0 || !nvr_trusted(&st)) {
        if (dfd >= 0)
            close(dfd);
        return to_node("no trusted launcher view directory %s", NVR_VIEW_DIR);
    }
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    close(dfd);
    if (fd < 0)
        return to_node("no launcher view %s/%s for this config file and PATH yet", NVR_VIEW_DIR, name);
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && nvr_trusted(&st) && st.st_size <= NVR_VIEW_MAX_BYTES)
        n = read(fd, g_view, NVR_VIEW_MAX_BYTES + 1);
    close(fd);
    if (n <= 0 || n > NVR_VIEW_MAX_BYTES || g_view[n - 1] != '\0')
        return to_node("launcher view %s/%s is not usable", NVR_VIEW_DIR, name);

    int ended = 0, seen_u = 0, seen_c = 0, seen_p = 0;
    g_runc = NULL;
    g_marker_count = 0;
    for (const char *rec = g_view, *end = g_view + n; rec < end; rec += strlen(rec) + 1) {
        if (ended)
            return to_node("launcher view %s: data after the end record", name);
        if (rec == g_view) {
            if (strcmp(rec, NVR_VIEW_MAGIC) != 0)
                return to_node("launcher view %s: unknown format", name);
            continue;
        }
        const char *v = rec + 1;
        switch (rec[0]) {
        case 'u':
            if (strcmp(rec, euid) != 0)
                return to_node("launcher view %s was written for another user", name);
            seen_u = 1;
            break;
        case 'c':
            if (strcmp(v, config) != 0)
                return to_node("launcher view %s was written for another config file", name);
            seen_c = 1;
            break;
        case 'p':
        case 'P':
            if (rec[0] == 'P' ? path != NULL || *v : path == NULL || strcmp(v, path) != 0)
                return to_node("launcher view %s was written for another PATH", name);
            seen_p = 1;
            break;
        case 'f': {
            const char *colon = strchr(v, ':');
            char now[160];
            if (!colon || colon[1] != '/')
                return to_node("launcher view %s: bad fingerprint record", name);
            identity(colon + 1, now, sizeof now);
            if ((size_t)(colon - v) != strlen(now) || memcmp(v, now, strlen(now)) != 0)
                return to_node("%s changed since the launcher view was written", colon + 1);
            break;
        }
        case 'r':
            if (g_runc || v[0] != '/')
                return to_node("launcher view %s: bad runtime record", name);
            g_runc = v;
            break;
        case 'm':
            if (g_marker_count == MAX_MARKERS)
                return to_node("launcher view %s: too many markers", name);
            g_markers[g_marker_count++] = v;
            break;
        case '.':
            if (rec[1])
                return to_node("launcher view %s: bad end record", name);
            ended = 1;
            break;
        default:
            return to_node("launcher view %s: unknown record '%c'", name, rec[0]);
        }
    }
    if (!ended || !seen_u || !seen_c || !seen_p || !g_runc || g_marker_count == 0)
        return to_node("launcher view %s is incomplete", name);
    return 1;
}

/* ---- argv: the modelled part of runc's grammar --------------------------------------------------------- */

/* A flag word ("-x", "--x", "-x=v", "--x=v") split into name and inline value; 0 for a word that is not a flag. */
static int split_flag(const char *w, const char **name, size_t *len, const char **inline_val)
{
    if (w[0] != '-' || w[1] == '\0')
        return 0;
    *name = w + 1 + (w[1] == '-');
    const char *eq = strchr(*name, '=');
    *len = eq ? (size_t)(eq - *name) : strlen(*name);
    *inline_val = eq ? eq + 1 : NULL;
    return 1;
}

static const struct nvr_flag *find_flag(const struct nvr_flag *table, const char *name, size_t len)
{
    for (; table->name; table++)
        if (strlen(table->name) == len && memcmp(table->name, name, len) == 0)
            return table;
    return NULL;
}

static int in_list(const char *const *list, const char *word)
{
    for (; *list; list++)
        if (strcmp(*list, word) == 0)
            return 1;
    return 0;
}

static int is_flag_word(const char *w)
{
    return w[0] == '-' && w[1] != '\0';
}

/* Index of the verb after runc's global flags (argc when there is none); -1 (reason set) when unsure. */
static int find_verb(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *name, *val;
        size_t len;
        if (strcmp(argv[i], "--") == 0)
            return i + 1;
        if (!split_flag(argv[i], &name, &len, &val))
            return i;
        const struct nvr_flag *f = find_flag(NVR_GLOBAL_FLAGS, name, len);
        if (!f)
            return to_node("unknown global flag %s", argv[i]) - 1;
        if (f->kind == 'b' && val)
            return to_node("boolean flag written with a value: %s", argv[i]) - 1;
        if (f->kind == 'v' && !val && ++i == argc)
            return to_node("flag %s has no value", argv[i - 1]) - 1;
        if (f->kind == 'v' && strcmp(f->canonical, "log") == 0)
            g_log = val ? val : argv[i];
        else if (f->kind == 'v' && strcmp(f->canonical, "log-format") == 0)
            g_log_format = val ? val : argv[i];
    }
    return argc;
}

/*
 * create/run: the bundle runc will read, or NULL (reason set) when unsure. runc (urfave/cli v1) lets these flags
 * follow the container id; the forms modelled here are exactly those where that reordering cannot change which
 * word is a value and which is the id: value flags take "=v" or a next word that is not a flag, boolean flags
 * take no "=v" and are not followed by a non-flag word unless it is the last one.
 */
static const char *find_bundle(int argc, char **argv, int verb, const struct nvr_flag *table)
{
    const char *bundle = ".";
    int positional = 0;
    for (int i = verb + 1; i < argc; i++) {
        const char *w = argv[i], *name, *val;
        size_t len;
        if (strcmp(w, "--") == 0)
            return to_node("\"--\" among the %s flags", argv[verb]), NULL;
        if (!split_flag(w, &name, &len, &val)) {
            positional++;
            continue;
        }
        const struct nvr_flag *f = find_flag(table, name, len);
        if (!f)
            return to_node("unknown %s flag %s", argv[verb], w), NULL;
        if (in_list(NVR_UNCERTAIN_CREATE_FLAGS, f->canonical))
            return to_node("%s --%s is decided by the runtime", argv[verb], f->canonical), NULL;
        if (f->kind == 'b') {
            if (val)
                return to_node("boolean flag written with a value: %s", w), NULL;
            if (i + 2 < argc && !is_flag_word(argv[i + 1]))
                return to_node("%s is followed by %s and more words", w, argv[i + 1]), NULL;
            continue;
        }
        if (!val) {
            if (i + 1 == argc || is_flag_word(argv[i + 1]))
                return to_node("flag %s has no value", w), NULL;
            val = argv[++i];
        }
        if (strcmp(f->canonical, "bundle") == 0)
            bundle = *val ? val : "."; /* the last one wins; runc ignores an empty --bundle */
    }
    if (positional != 1)
        return to_node("%s with %d arguments (runc wants exactly one container id)", argv[verb], positional), NULL;
    return bundle;
}

/* ---- create/run: could this spec be a GPU container? ------------------------------------------------------ */

static int hex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * 1 when the spec certainly holds no GPU marker. Markers are matched on raw bytes, so every JSON escape is
 * decoded: one that spells a character some marker uses ("\u004eVIDIA_", "cdi.k8s.io\/") could hide a marker.
 */
static int spec_is_plain(const char *buf, size_t size)
{
    unsigned char alphabet[128] = {0};
    int non_ascii = 0;
    for (size_t m = 0; m < g_marker_count; m++) {
        if (memmem(buf, size, g_markers[m], strlen(g_markers[m]))) {
            g_warm = 1;
            return to_node("GPU marker \"%s\" in the spec", g_markers[m]);
        }
        for (const unsigned char *p = (const unsigned char *)g_markers[m]; *p; p++) {
            if (*p < 128)
                alphabet[*p] = 1;
            else
                non_ascii = 1;
        }
    }
    static const char simple[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
    for (const char *p = buf, *end = buf + size; (p = memchr(p, '\\', (size_t)(end - p))) != NULL;) {
        const ptrdiff_t at = p - buf;
        const char *s = end - p > 1 ? strchr(simple, p[1]) : NULL;
        unsigned code;
        if (s && p[1]) {
            code = (unsigned char)decoded[s - simple];
            p += 2;
        } else if (end - p >= 6 && p[1] == 'u' && hex(p[2]) >= 0 && hex(p[3]) >= 0 && hex(p[4]) >= 0 && hex(p[5]) >= 0) {
            code = (unsigned)(hex(p[2]) << 12 | hex(p[3]) << 8 | hex(p[4]) << 4 | hex(p[5]));
            p += 6;
        } else {
            return to_node("malformed escape at byte %td of the spec", at);
        }
        if (code < 128 ? alphabet[code] : non_ascii)
            return to_node("escape at byte %td of the spec spells a character of a GPU marker", at);
    }
    return 1;
}

/* 1 when <bundle>/config.json certainly needs no GPU edits. A file runc cannot read at all goes to runc (it reports
 * the error the engine expects); anything unusual (a link, a FIFO, an oversized file) goes to Node, which refuses it. */
static int bundle_is_plain(const char *bundle)
{
    int dfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 1 : to_node("bundle %s: %s", bundle, strerror(errno));
    int fd = openat(dfd, "config.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    close(dfd);
    if (fd < 0)
        return err == ENOENT ? 1 : to_node("%s/config.json: %s", bundle, strerror(err));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > NVR_SPEC_MAX_BYTES) {
        close(fd);
        return to_node("%s/config.json is not a regular file under %d bytes", bundle, NVR_SPEC_MAX_BYTES);
    }
    g_spec_st = st;
    if (st.st_size == 0) {
        close(fd);
        return 1;
    }
    const char *buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED)
        return to_node("%s/config.json: cannot map it: %s", bundle, strerror(errno));
    int plain = spec_is_plain(buf, (size_t)st.st_size);
    munmap((void *)buf, (size_t)st.st_size);
    return plain;
}

/* ---- the decision ------------------------------------------------------------------------------------------ */

/* 1: exec g_runc with the same argv; 0: hand the call to Node (g_reason says why). */
static int certain_pass_through(int argc, char **argv)
{
    if (!load_view())
        return 0;
    int verb = find_verb(argc, argv);
    if (verb < 0)
        return 0;
    if (verb == argc || in_list(NVR_PASS_THROUGH_VERBS, argv[verb]))
        return 1;
    for (int k = 0; NVR_CREATE_VERBS[k].verb; k++) {
        if (strcmp(argv[verb], NVR_CREATE_VERBS[k].verb) != 0)
            continue;
        const char *bundle = find_bundle(argc, argv, verb, NVR_CREATE_VERBS[k].flags);
        g_bundle = bundle;
        return bundle && bundle_is_plain(bundle);
    }
    return to_node("unknown verb %s", argv[verb]);
}

/* ---- exec ---------------------------------------------------------------------------------------------------- */

/* An allowlisted caller variable Node may see (NVR_NODE_ENV: what the runtime's decisions read). */
static int env_allowed(const char *kv)
{
    for (const char *const *name = NVR_NODE_ENV; *name; name++) {
        size_t n = strlen(*name);
        if (strncmp(kv, *name, n) == 0 && kv[n] == '=')
            return 1;
    }
    return 0;
}

/*
 * The caller's whole environment, NUL-separated, in a sealed memfd that Node inherits: the runtime hands it to runc
 * unchanged (the addon reads it in C), while Node itself runs with the allowlist only (SECURITY.md §4.5: NODE_OPTIONS,
 * OPENSSL_CONF, LD_* … never reach an interpreter running as root). -1 when it cannot be made.
 */
static int caller_env_fd(void)
{
    int fd = memfd_create("nvidia-runtime-caller-env", MFD_ALLOW_SEALING); /* no CLOEXEC: Node inherits it */
    if (fd < 0)
        return -1;
    for (char **e = environ; *e; e++) {
        const char *p = *e;
        size_t left = strlen(p) + 1;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w <= 0) {
                close(fd);
                return -1;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * The first Node candidate that, after following links, is an executable regular file that passes the trust rule, in
 * a directory that passes it too (the rule of the runtime's runc lookup, src/trust.ts); its real path, or NULL with
 * every refused candidate and why in `tried`.
 */
static const char *find_node(char *real, char *tried, size_t n)
{
    static const char *const candidates[] = {NVR_NODE_CANDIDATES, 0};
    size_t used = 0;
    tried[0] = '\0';
    for (size_t i = 0; candidates[i]; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(candidates[i], candidates[j]) == 0;
        if (seen)
            continue;
        struct stat st;
        const char *why = NULL;
        if (!realpath(candidates[i], real) || stat(real, &st) != 0)
            why = strerror(errno);
        else if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
            why = "not an executable file";
        else if (!nvr_trusted(&st))
            why = "not owned by root or writable by group/others";
        else {
            char *slash = strrchr(real, '/');
            struct stat dst;
            *slash = '\0';
            int ok = stat(slash == real ? "/" : real, &dst) == 0 && nvr_trusted(&dst);
            *slash = '/';
            if (!ok)
                why = "its directory is not owned by root or is writable by group/others";
        }
        if (!why)
            return real;
        if (used < n)
            used += (size_t)snprintf(tried + used, n - used, "%s%s (%s)", used ? ", " : "", candidates[i], why);
    }
    return NULL;
}

/* Node with <prefix>/runtime/<entry>; with_caller_env: the caller's environment in a sealed memfd (for runc). */
__attribute__((noreturn)) static void exec_node(int argc, char **argv, const char *entry, int with_caller_env)
{
    static char script[PATH_MAX];
    /* <prefix>/bin/nvidia-runtime -> <prefix>/runtime/<entry> */
    ssize_t n = readlink("/proc/self/exe", script, sizeof script - 1);
    if (n < 0) {
        fprintf(stderr, "nvidia-runtime: cannot read /proc/self/exe: %s: is /proc mounted?\n", strerror(errno));
        exit(1);
    }
    script[n] = '\0';
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(script, '/');
        if (slash)
            *slash = '\0';
    }
    if (strlen(script) + strlen("/runtime/") + strlen(entry) + 1 > sizeof script) {
        fprintf(stderr, "nvidia-runtime: install path too long: install it in a shorter path\n");
        exit(1);
    }
    strcat(script, "/runtime/");
    strcat(script, entry);

    char **nargv = calloc((size_t)argc + 2, sizeof *nargv);
    size_t envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    char **nenv = calloc(envc + 2, sizeof *nenv);
    if (!nargv || !nenv) {
        fprintf(stderr, "nvidia-runtime: out of memory\n");
        exit(1);
    }
    static char node[PATH_MAX], tried[4 * PATH_MAX];
    if (!find_node(node, tried, sizeof tried)) {
        fprintf(stderr, "nvidia-runtime: no usable Node.js: tried %s: install Node.js 20 or newer as /usr/bin/node "
                        "(root-owned, not group/world-writable; the nodejs package)\n", tried);
        exit(1);
    }
    nargv[0] = node;
    nargv[1] = script;
    for (int i = 1; i < argc; i++)
        nargv[i + 1] = argv[i];
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (env_allowed(*e))
            nenv[k++] = *e;
    static char fdvar[64];
    if (with_caller_env) {
        int efd = caller_env_fd();
        if (efd < 0) {
            fprintf(stderr, "nvidia-runtime: cannot pass the environment to the runtime (memfd): %s\n", strerror(errno));
            exit(1);
        }
        snprintf(fdvar, sizeof fdvar, "%s=%d", NVR_CALLER_ENV_FD_VAR, efd);
        nenv[k] = fdvar;
    }
    execve(node, nargv, nenv);
    fprintf(stderr, "nvidia-runtime: cannot execute %s: %s: reinstall Node.js 20 or newer\n", node, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *self = argv[0] ? strrchr(argv[0], '/') : NULL;
    self = self ? self + 1 : argv[0] ? argv[0] : "";
    /* The toolkit's prestart hook (what `docker run --gpus` runs): always Node, never the caller's environment. */
    if (strcmp(self, "nvidia-container-runtime-hook") == 0 || strcmp(self, "nvidia-container-toolkit") == 0)
        exec_node(argc, argv, "prestart-hook.js", 0);
    int pass = certain_pass_through(argc, argv);
    if (strcmp(self, "nvidia-runtime-decide") == 0) {
        if (pass) {
            fputs("runc\t", stdout);
            for (const char *p = g_runc; *p; p++)
                putchar((unsigned char)*p < 0x20 ? '?' : *p);
            putchar('\n');
        }
        else
            printf("node\t%s\n", g_reason);
        return 0;
    }
    if (pass) {
        argv[0] = (char *)g_runc;
        execv(g_runc, argv);
        /* runc vanished since the view was written: Node finds the runtime again, or says why it cannot. */
    } else if (g_warm) {
        /* The warm path (docs/warm-path.md): returns only when the cold path must run. */
        nvr_serve_try(argv, g_runc, g_bundle, &g_spec_st, g_log, g_log_format);
    }
    exec_node(argc, argv, "main.js", 1);
}
