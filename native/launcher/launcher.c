/*
 * nvidia-runtime: the native front of the runtime. Docker/containerd/CRI-O call it exactly like runc, four or
 * more times per container, so it must cost almost nothing when there is nothing GPU-related to do:
 *
 *   argv (runc grammar) -> find + validate runc -> verb != create/run          -> execv(runc, same argv)
 *                                               -> create/run, no GPU marker   -> execv(runc, same argv)
 *                                               -> create/run, marker found    -> execv(node, main.js, argv)
 *
 * The pass-through path allocates nothing on the heap: static buffers, mmap'd files, argv patched in place.
 * Every failure is one line on stderr, "nvidia-runtime: <what>: <fix>", exit 1, plus a runc-style JSON error
 * line in the --log file when --log-format json was given (containerd shows the last such line).
 * See native/launcher/README.md for the decisions (why a symlinked config.json fails closed, etc.).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../include/gpu_markers.h" /* generated from src/runtime/gpu-markers.json */

#ifndef NODE_EXECUTABLE
#error "define NODE_EXECUTABLE: the absolute path of the node binary the runtime was built for"
#endif

#define DEFAULT_CONFIG "/etc/nvidia-container-runtime/config.toml"
#define CONFIG_TOML_CAP (4u << 20)
#define CONFIG_JSON_CAP (32u << 20)
#define MAX_RUNTIMES 16
#define FALLBACK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

static const char *g_log_path;   /* --log F */
static int g_log_json;           /* --log-format json */
static char g_self[PATH_MAX];    /* realpath of /proc/self/exe */
static char g_runc[PATH_MAX];    /* realpath of the chosen runc */
static char g_config[PATH_MAX];  /* config.toml path, for messages */
static char g_rt_store[8192];    /* runtimes = [...] strings, NUL-separated */
static const char *g_rt[MAX_RUNTIMES];
static int g_rt_count;

/* ---- errors ------------------------------------------------------------------------------------------- */

/* Append {"level":"error","msg":...,"time":...} to the --log file in one write(), as runc's logrus does. */
static void log_json_error(const char *msg)
{
    static char line[8192];
    size_t n = 0;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += (size_t)snprintf(line, sizeof line, "{\"level\":\"error\",\"msg\":\"");
    for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof line - 64; p++) {
        if (*p == '"' || *p == '\\') {
            line[n++] = '\\';
            line[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(line + n, sizeof line - n, "\\u%04x", *p);
        } else {
            line[n++] = (char)*p;
        }
    }
    n += (size_t)snprintf(line + n, sizeof line - n, "\",\"time\":\"%s\"}\n", ts);
    int fd = open(g_log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, n) < 0) { /* nothing more we can do: stderr already has the message */ }
    close(fd);
}

__attribute__((noreturn, format(printf, 2, 3))) static void die(const char *fix, const char *fmt, ...)
{
    static char msg[4096];
    va_list ap;
    int n = snprintf(msg, sizeof msg, "nvidia-runtime: ");
    va_start(ap, fmt);
    n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": %s", fix);
    fprintf(stderr, "%s\n", msg);
    if (g_log_path && g_log_json)
        log_json_error(msg);
    exit(1);
}

/* ---- argv: runc's grammar ----------------------------------------------------------------------------- */

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(name, want, n) == 0;
}

/* Splits "-x", "--x", "-x=v", "--x=v" into name/len and inline value. Returns 0 for a non-flag word. */
static int split_flag(const char *a, const char **name, size_t *n, const char **inline_val)
{
    if (a[0] != '-' || a[1] == '\0')
        return 0;
    *name = a + 1 + (a[1] == '-');
    const char *eq = strchr(*name, '=');
    *n = eq ? (size_t)(eq - *name) : strlen(*name);
    *inline_val = eq ? eq + 1 : NULL;
    return 1;
}

/* Index of the verb (first non-flag word after runc's global flags), argc when there is none. */
static int parse_global_flags(int argc, char **argv)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *name, *val;
        size_t n;
        if (strcmp(argv[i], "--") == 0)
            return i + 1;
        if (!split_flag(argv[i], &name, &n, &val))
            return i;
        int takes = name_is(name, n, "root") || name_is(name, n, "log") || name_is(name, n, "log-format") ||
                    name_is(name, n, "criu") || name_is(name, n, "rootless");
        if (!val && takes && i + 1 < argc)
            val = argv[++i];
        if (val && name_is(name, n, "log"))
            g_log_path = val;
        if (val && name_is(name, n, "log-format"))
            g_log_json = strcmp(val, "json") == 0;
    }
    return i;
}

/* --bundle/-b among the create/run flags (Go's flag package stops at the first non-flag word: the id). */
static const char *find_bundle(int argc, char **argv, int verb)
{
    const char *bundle = NULL;
    for (int i = verb + 1; i < argc; i++) {
        const char *name, *val;
        size_t n;
        if (strcmp(argv[i], "--") == 0 || !split_flag(argv[i], &name, &n, &val))
            break;
        int is_bundle = name_is(name, n, "bundle") || name_is(name, n, "b");
        int takes = is_bundle || name_is(name, n, "console-socket") || name_is(name, n, "pidfd-socket") ||
                    name_is(name, n, "pid-file") || name_is(name, n, "preserve-fds");
        if (!val && takes && i + 1 < argc)
            val = argv[++i];
        if (is_bundle && val)
            bundle = val; /* the last one wins, as in Go's flag package */
    }
    return bundle && *bundle ? bundle : ".";
}

/* ---- config.toml: [nvidia-container-runtime] runtimes = ["a", "b"] ------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Parses one single-line TOML string array at p. Returns 0, or -1 when it is not one. */
static int parse_runtimes_array(const char *p, const char *end)
{
    size_t used = 0;
    g_rt_count = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '[')
        return -1;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == ']')
            break;
        if (p >= end || (*p != '"' && *p != '\'') || g_rt_count == MAX_RUNTIMES)
            return -1;
        char q = *p++;
        g_rt[g_rt_count++] = g_rt_store + used;
        for (;;) {
            if (p >= end || used + 1 >= sizeof g_rt_store)
                return -1;
            char c = *p++;
            if (c == q)
                break;
            if (q == '"' && c == '\\') { /* only \" and \\ are meaningful in a path */
                if (p >= end || (*p != '"' && *p != '\\'))
                    return -1;
                c = *p++;
            }
            g_rt_store[used++] = c;
        }
        g_rt_store[used++] = '\0';
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
        else if (p >= end || *p != ']')
            return -1;
    }
    p = skip_ws(p + 1, end);
    return (p == end || *p == '#') ? 0 : -1;
}

static void load_runtimes(void)
{
    static const char *const defaults[] = {"docker-runc", "runc", "crun"};
    const char *path = getenv("NVIDIA_CTK_CONFIG_FILE_PATH");
    snprintf(g_config, sizeof g_config, "%s", path && *path ? path : DEFAULT_CONFIG);
    for (g_rt_count = 0; g_rt_count < 3; g_rt_count++)
        g_rt[g_rt_count] = defaults[g_rt_count];

    int fd = open(g_config, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return;
        die("check the file's permissions", "cannot open %s: %s", g_config, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_TOML_CAP)
        die("it must be a regular file under 4 MiB", "cannot use %s", g_config);
    /* Same trust rule as the TypeScript side (src/config/load.ts): it picks the binary we exec as root. */
    if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
        die("make it owned by root and not group- or world-writable (chmod go-w)", "%s is writable by someone other than root: refusing to use it", g_config);
    if (st.st_size == 0) {
        close(fd);
        return;
    }
    const char *buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED)
        die("check the file", "cannot read %s: %s", g_config, strerror(errno));

    const char *end = buf + st.st_size;
    int in_table = 0;
    for (const char *line = buf; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *le = eol;
        if (le > line && le[-1] == '\r')
            le--;
        const char *p = skip_ws(line, le);
        if (p < le && *p == '[') {
            const char *q = skip_ws(p + 1, le);
            const char *t = "nvidia-container-runtime";
            size_t tn = strlen(t);
            in_table = p[1] != '[' && (size_t)(le - q) >= tn && memcmp(q, t, tn) == 0 &&
                       *skip_ws(q + tn, le) == ']';
        } else if (in_table && (size_t)(le - p) > 8 && memcmp(p, "runtimes", 8) == 0) {
            const char *q = skip_ws(p + 8, le);
            if (q < le && *q == '=' && parse_runtimes_array(q + 1, le) != 0)
                die("write it as a single-line string array, e.g. runtimes = [\"runc\"]",
                    "%s: cannot parse [nvidia-container-runtime] runtimes", g_config);
        }
        line = eol + 1;
    }
    munmap((void *)buf, (size_t)st.st_size);
}

/* ---- runc lookup and validation ----------------------------------------------------------------------- */

/* 1 when path exists and is not ourselves; g_runc then holds its realpath. */
static int try_candidate(const char *path)
{
    if (realpath(path, g_runc) == NULL)
        return 0;
    return strcmp(g_runc, g_self) != 0;
}

static int search_dirs(const char *dirs, const char *name)
{
    char path[PATH_MAX];
    for (const char *d = dirs; d && *d;) {
        const char *colon = strchrnul(d, ':');
        size_t n = (size_t)(colon - d);
        /* Relative and empty PATH entries would make the lookup depend on the cwd (the bundle): skip them. */
        if (n > 0 && d[0] == '/' && n + 1 + strlen(name) < sizeof path) {
            memcpy(path, d, n);
            path[n] = '/';
            strcpy(path + n + 1, name);
            if (try_candidate(path))
                return 1;
        }
        d = *colon ? colon + 1 : colon;
    }
    return 0;
}

static void find_runc(void)
{
    if (readlink("/proc/self/exe", g_self, sizeof g_self - 1) < 0)
        die("is /proc mounted?", "cannot read /proc/self/exe: %s", strerror(errno));
    load_runtimes();
    for (int i = 0; i < g_rt_count; i++) {
        const char *c = g_rt[i];
        if (c[0] == '/' ? try_candidate(c)
                        : !strchr(c, '/') && (search_dirs(getenv("PATH"), c) || search_dirs(FALLBACK_PATH, c)))
            return;
    }
    die("install runc or list its absolute path in [nvidia-container-runtime] runtimes",
        "no low-level runtime found (config %s)", g_config);
}

static void validate_runc(void)
{
    struct stat st;
    if (stat(g_runc, &st) != 0)
        die("check the runtimes list", "cannot stat runtime %s: %s", g_runc, strerror(errno));
    if (!S_ISREG(st.st_mode))
        die("point runtimes at the runc binary", "runtime %s is not a regular file", g_runc);
    if (!(st.st_mode & 0111))
        die("chmod 0755 it", "runtime %s is not executable", g_runc);
    if (st.st_uid != 0)
        die("chown root it", "runtime %s is not owned by root", g_runc);
    if (st.st_mode & 022)
        die("chmod go-w it", "runtime %s is group- or world-writable", g_runc);
}

__attribute__((noreturn)) static void exec_runc(char **argv)
{
    argv[0] = g_runc;
    execv(g_runc, argv);
    die("check the runtime binary", "cannot execute %s: %s", g_runc, strerror(errno));
}

/* ---- create/run: is this a GPU container? -------------------------------------------------------------- */

/* 1 marker found, 0 none; config.json that cannot be opened -> 0 (runc reports it). */
static int bundle_has_marker(const char *bundle)
{
    int dfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    /* O_NONBLOCK: a FIFO named config.json must not hang us; it is rejected below. */
    int fd = openat(dfd, "config.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    close(dfd);
    if (fd < 0 && err == ELOOP)
        die("replace the symlink with the file itself", "%s/config.json is a symlink", bundle);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        die("config.json must be a regular file", "%s/config.json is not a regular file", bundle);
    if (st.st_size > CONFIG_JSON_CAP)
        die("config.json must be under 32 MiB", "%s/config.json is too large", bundle);
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    const char *buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED)
        return 0;
    for (size_t i = 0; i < GPU_MARKER_COUNT; i++)
        if (memmem(buf, (size_t)st.st_size, GPU_MARKERS[i], strlen(GPU_MARKERS[i])))
            return 1;
    return 0;
}

/* Names a root-run interpreter must never inherit (SECURITY.md §4.5, H1): Node's own knobs and the loader's. */
static int env_dropped(const char *kv)
{
    return strncmp(kv, "NODE_", 5) == 0 || strncmp(kv, "LD_", 3) == 0 || strncmp(kv, "GCONV_PATH=", 11) == 0 ||
           strncmp(kv, "GLIBC_TUNABLES=", 15) == 0 || strncmp(kv, "NVIDIA_RUNTIME_RUNC=", 20) == 0;
}

__attribute__((noreturn)) static void exec_node(int argc, char **argv)
{
    static char script[PATH_MAX], runc_env[PATH_MAX + 32];
    /* <prefix>/bin/nvidia-runtime -> <prefix>/runtime/main.js */
    strcpy(script, g_self);
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(script, '/');
        if (slash)
            *slash = '\0';
    }
    if (strlen(script) + sizeof "/runtime/main.js" > sizeof script)
        die("install it in a shorter path", "install path too long");
    strcat(script, "/runtime/main.js");
    struct stat st;
    if (stat(script, &st) != 0)
        die("reinstall nvidia-runtime", "runtime script %s: %s", script, strerror(errno));

    char **nargv = calloc((size_t)argc + 2, sizeof *nargv);
    size_t envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    char **nenv = calloc(envc + 2, sizeof *nenv);
    if (!nargv || !nenv)
        die("free some memory", "out of memory");
    nargv[0] = (char *)NODE_EXECUTABLE;
    nargv[1] = script;
    for (int i = 1; i < argc; i++)
        nargv[i + 1] = argv[i];
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (!env_dropped(*e))
            nenv[k++] = *e;
    snprintf(runc_env, sizeof runc_env, "NVIDIA_RUNTIME_RUNC=%s", g_runc);
    nenv[k] = runc_env;
    execve(NODE_EXECUTABLE, nargv, nenv);
    die("reinstall nvidia-runtime with the Node it was built for", "cannot execute %s: %s", NODE_EXECUTABLE,
        strerror(errno));
}

int main(int argc, char **argv)
{
    int verb = parse_global_flags(argc, argv);
    find_runc();
    validate_runc();
    if (verb >= argc || (strcmp(argv[verb], "create") != 0 && strcmp(argv[verb], "run") != 0))
        exec_runc(argv);
    if (bundle_has_marker(find_bundle(argc, argv, verb)))
        exec_node(argc, argv);
    exec_runc(argv);
}
