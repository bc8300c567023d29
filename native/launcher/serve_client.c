/*
 * The warm path's client (docs/warm-path.md, native/launcher/README.md "The warm path"). For a create/run that
 * would go to Node only because its spec holds a GPU marker, the launcher asks the service first:
 *
 *   trust    the socket and its directory pass the view's trust rule (lstat: a socket / a directory, not a link,
 *            owned by root or the euid, not group/world-writable); the connected server's SO_PEERCRED uid is 0 or
 *            the euid
 *   request  magic, d<cwd>, c<config path>|c, p<PATH>|P, a<arg> for argv[1..], "." (NUL-terminated records), then
 *            shutdown(SHUT_WR)
 *   answer   read to EOF under one deadline (NVR_SERVE_DEADLINE_MS from connect to the last byte), at most
 *            NVR_SERVE_MAX_MESSAGE_BYTES, parsed strictly
 *   runc     r = the view's runc: exec it with our argv and environment
 *   write    r = the view's runc, f = the config.json the launcher scanned, i = its identity now: replace it exactly
 *            as src/oci/atomic-write.ts writeFileAtomic does, then exec runc
 *
 * Anything else returns to the caller, which runs the cold path (Node) as if the service did not exist; the service
 * is optional, so that is silent. Only a failed replacement is an error (one line, exit 1, nothing replaced).
 */
#define _GNU_SOURCE
#include "serve_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../include/launcher_contract.h"

#define SPEC_NAME "config.json"

extern char **environ;

/* ---- time ---------------------------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline; 1 when ready, 0 on timeout or error. */
static int wait_for(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return (p.revents & (events | POLLHUP | POLLERR)) != 0;
        if (r == 0 || errno != EINTR)
            return 0;
    }
}

/* ---- connecting ---------------------------------------------------------------------------------------------- */

/* The socket and its directory: lstat (no link), the right type, the view's trust rule. */
static int socket_trusted(void)
{
    char dir[sizeof NVR_SERVE_SOCKET];
    memcpy(dir, NVR_SERVE_SOCKET, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || !nvr_trusted(&st))
        return 0;
    if (lstat(NVR_SERVE_SOCKET, &st) != 0 || !S_ISSOCK(st.st_mode) || !nvr_trusted(&st))
        return 0;
    return 1;
}

/* A connected, non-blocking, close-on-exec socket to a trusted service, or -1. */
static int connect_service(int64_t deadline)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    _Static_assert(sizeof NVR_SERVE_SOCKET <= sizeof addr.sun_path, "NVR_SERVE_SOCKET too long for sun_path");
    memcpy(addr.sun_path, NVR_SERVE_SOCKET, sizeof NVR_SERVE_SOCKET);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        /* ENOENT, ECONNREFUSED: no service; EAGAIN: its backlog is full. All mean the cold path. */
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline) ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the request --------------------------------------------------------------------------------------------- */

/* A fixed buffer in front of the socket: the request is never held in memory as a whole. */
static struct {
    int fd;
    int64_t deadline;
    size_t used, total;
    int failed;
    char buf[8192];
} out;

static void flush_out(void)
{
    size_t off = 0;
    while (!out.failed && off < out.used) {
        ssize_t w = send(out.fd, out.buf + off, out.used - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(out.fd, POLLOUT, out.deadline))
            continue;
        else
            out.failed = 1;
    }
    out.used = 0;
}

static void put(const char *p, size_t n)
{
    out.total += n;
    if (out.total > NVR_SERVE_MAX_MESSAGE_BYTES)
        out.failed = 1;
    while (!out.failed && n > 0) {
        if (out.used == sizeof out.buf)
            flush_out();
        size_t k = sizeof out.buf - out.used < n ? sizeof out.buf - out.used : n;
        memcpy(out.buf + out.used, p, k);
        out.used += k;
        p += k;
        n -= k;
    }
}

/* One record: its tag (0: none, for the magic) and its value, NUL-terminated. */
static void put_record(char tag, const char *value)
{
    if (tag)
        put(&tag, 1);
    put(value, strlen(value) + 1);
}

static int send_request(int fd, int64_t deadline, char **argv, const char *cwd)
{
    out.fd = fd;
    out.deadline = deadline;
    out.used = out.total = 0;
    out.failed = 0;
    const char *config = getenv(NVR_CONFIG_ENV);
    const char *path = getenv("PATH");
    put_record(0, NVR_SERVE_MAGIC);
    put_record('d', cwd);
    put_record('c', config ? config : "");
    if (path)
        put_record('p', path);
    else
        put_record('P', "");
    for (char **a = argv + 1; *a; a++)
        put_record('a', *a);
    put_record('.', "");
    flush_out();
    return !out.failed && shutdown(fd, SHUT_WR) == 0;
}

/* ---- the answer ---------------------------------------------------------------------------------------------- */

/* The whole answer, read to EOF before the deadline; NULL when late, cut, oversized or unreadable. */
static char *read_answer(int fd, int64_t deadline, size_t *size)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap > NVR_SERVE_MAX_MESSAGE_BYTES)
                break; /* more than the cap */
            size_t next = cap * 2 > (size_t)NVR_SERVE_MAX_MESSAGE_BYTES + 1 ? (size_t)NVR_SERVE_MAX_MESSAGE_BYTES + 1 : cap * 2;
            char *bigger = realloc(buf, next);
            if (!bigger)
                break;
            buf = bigger;
            cap = next;
        }
        ssize_t r = recv(fd, buf + n, cap - n, MSG_DONTWAIT);
        if (r > 0) {
            n += (size_t)r;
            if (n > NVR_SERVE_MAX_MESSAGE_BYTES)
                break;
        } else if (r == 0) {
            *size = n;
            return buf;
        } else if (errno == EINTR) {
            continue;
        } else if ((errno != EAGAIN && errno != EWOULDBLOCK) || !wait_for(fd, POLLIN, deadline)) {
            break;
        }
    }
    free(buf);
    return NULL;
}

/* The next NUL-terminated record at *p (advanced past it), or NULL when none ends before `end`. */
static const char *next_record(const char **p, const char *end)
{
    if (*p >= end)
        return NULL;
    const char *nul = memchr(*p, '\0', (size_t)(end - *p));
    if (!nul)
        return NULL;
    const char *rec = *p;
    *p = nul + 1;
    return rec;
}

/* A decimal length: digits only, no sign, no leading zero (except "0"), at most `max`. */
static int parse_length(const char *s, size_t max, size_t *value)
{
    if (!*s || (s[0] == '0' && s[1]))
        return 0;
    size_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (max - (size_t)(*s - '0')) / 10)
            return 0;
        v = v * 10 + (size_t)(*s - '0');
    }
    *value = v;
    return 1;
}

struct answer {
    int write;           /* 0: "runc", 1: "write" */
    const char *runc;    /* r */
    const char *file;    /* f (write) */
    const char *ident;   /* i (write) */
    const char *text;    /* the new config.json (write) */
    size_t text_len;
};

/* 1 when buf holds exactly a `runc` or `write` answer; anything else (a `cold` answer included) is 0. */
static int parse_answer(const char *buf, size_t size, struct answer *a)
{
    const char *p = buf, *end = buf + size, *rec;
    memset(a, 0, sizeof *a);
    if (!(rec = next_record(&p, end)) || strcmp(rec, NVR_SERVE_MAGIC) != 0 || !(rec = next_record(&p, end)))
        return 0;
    if (strcmp(rec, "write") == 0)
        a->write = 1;
    else if (strcmp(rec, "runc") != 0)
        return 0;
    if (!(rec = next_record(&p, end)) || rec[0] != 'r' || rec[1] != '/')
        return 0;
    a->runc = rec + 1;
    if (!a->write) {
        rec = next_record(&p, end);
        return rec && strcmp(rec, ".") == 0 && p == end;
    }
    if (!(rec = next_record(&p, end)) || rec[0] != 'f' || rec[1] != '/')
        return 0;
    a->file = rec + 1;
    if (!(rec = next_record(&p, end)) || rec[0] != 'i' || !rec[1])
        return 0;
    a->ident = rec + 1;
    if (!(rec = next_record(&p, end)) || rec[0] != 'n' || !parse_length(rec + 1, NVR_SERVE_MAX_MESSAGE_BYTES, &a->text_len))
        return 0;
    if ((size_t)(end - p) != a->text_len + 2 || p[a->text_len] != '.' || p[a->text_len + 1] != '\0')
        return 0;
    a->text = p;
    return 1;
}

/* ---- the spec the launcher scanned --------------------------------------------------------------------------- */

/* Appends path segments to out (an absolute path), resolving "." and ".." lexically as Node's path.resolve does. */
static int append_segments(char *out, size_t cap, const char *s)
{
    size_t len = strlen(out);
    while (*s) {
        while (*s == '/')
            s++;
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            /* nothing */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 1)
                len--; /* the slash, unless it is the root */
            out[len] = '\0';
        } else {
            if (len + (len > 1) + n + 1 > cap)
                return 0;
            if (len > 1)
                out[len++] = '/';
            memcpy(out + len, s, n);
            len += n;
            out[len] = '\0';
        }
        s = e;
    }
    return 1;
}

/* path.resolve(cwd, bundle, "config.json"): the path the runtime (and the service) name the spec by. */
static int spec_path(char *out, size_t cap, const char *cwd, const char *bundle)
{
    if (cap < 2)
        return 0;
    strcpy(out, "/");
    return (bundle[0] == '/' || append_segments(out, cap, cwd)) && append_segments(out, cap, bundle) &&
           append_segments(out, cap, SPEC_NAME);
}

/* ---- replacing config.json as src/oci/atomic-write.ts writeFileAtomic does ----------------------------------- */

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *name = strerrorname_np(e);
    if (name)
        return name;
#endif
    static char buf[24];
    snprintf(buf, sizeof buf, "errno %d", e);
    return buf;
}

#define FIX_DIR "check that the directory is writable and the filesystem is not full or read-only"
#define FIX_OWNER "run as the owner of the file (normally root)"

static const char *g_log, *g_log_format;

/* s as JSON.stringify writes it (the runtime's src/log/runc-log.ts), appended at out[*n]; 0 when it does not fit. */
static int put_json_string(char *out, size_t cap, size_t *n, const char *s)
{
    static const char esc_from[] = "\"\\\b\f\n\r\t", esc_to[] = "\"\\bfnrt";
    char tmp[8];
    if (*n + 1 >= cap)
        return 0;
    out[(*n)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = strchr(esc_from, *p);
        if (e)
            snprintf(tmp, sizeof tmp, "\\%c", esc_to[e - esc_from]);
        else if (*p < 0x20)
            snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        else
            tmp[0] = (char)*p, tmp[1] = '\0';
        size_t k = strlen(tmp);
        if (*n + k + 1 >= cap)
            return 0;
        memcpy(out + *n, tmp, k);
        *n += k;
    }
    out[(*n)++] = '"';
    return 1;
}

/* appendRuncLogError: one runc-style error record (json or logrus text) in --log, one write(2); never fails. */
static void append_runc_log(const char *message)
{
    if (!g_log || !*g_log)
        return;
    static char line[65536];
    char ts[96];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));
    size_t n = 0;
    int ok;
    if (g_log_format && strcmp(g_log_format, "json") == 0) {
        n = (size_t)snprintf(line, sizeof line, "{\"level\":\"error\",\"msg\":");
        ok = put_json_string(line, sizeof line, &n, message);
        ok = ok && (size_t)snprintf(line + n, sizeof line - n, ",\"time\":\"%s\"}\n", ts) < sizeof line - n;
    } else {
        n = (size_t)snprintf(line, sizeof line, "time=\"%s\" level=error msg=", ts);
        ok = put_json_string(line, sizeof line, &n, message);
        ok = ok && (size_t)snprintf(line + n, sizeof line - n, "\n") < sizeof line - n;
    }
    if (!ok)
        return;
    int fd = open(g_log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
}

/* The runtime's error path (src/runtime/main.ts fail()): one line on stderr, the same record in --log, exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    static char message[2 * PATH_MAX + 512];
    int n = snprintf(message, sizeof message, "nvidia-runtime: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + n, sizeof message - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", message);
    append_runc_log(message);
    exit(1);
}

/* NvrError.userMessage() of writeFileAtomic's ioError. */
__attribute__((noreturn)) static void write_failed(const char *file, const char *step, int err, const char *fix)
{
    fail("writing %s: %s failed (%s); %s", file, step, errno_name(err), fix);
}

/* removeStaleTemps: temp files `.config.json.<pid>.<12 hex>.tmp` whose writer is gone (best effort). */
static void remove_stale_temps(int dfd)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    static const char prefix[] = "." SPEC_NAME ".";
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *s = e->d_name;
        if (strncmp(s, prefix, sizeof prefix - 1) != 0)
            continue;
        s += sizeof prefix - 1;
        long long pid = 0;
        const char *digits = s;
        for (; *s >= '0' && *s <= '9' && s - digits < 12; s++)
            pid = pid * 10 + (*s - '0');
        if (s == digits || *s != '.')
            continue;
        s++;
        int k = 0;
        for (; k < 12 && ((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f')); k++)
            ;
        if (k != 12 || strcmp(s + 12, ".tmp") != 0)
            continue;
        if (pid == getpid() || pid > INT_MAX || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

static void random_hex(char out[13])
{
    unsigned char r[6];
    ssize_t got = getrandom(r, sizeof r, 0);
    if (got != (ssize_t)sizeof r) { /* O_EXCL still keeps the name unique; this only picks one */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(x >> (8 * i));
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/*
 * Replaces `file` (SPEC_NAME in dfd, whose lstat is `old`) with text. Same-directory temp file opened
 * O_CREAT|O_EXCL|O_WRONLY|O_NOFOLLOW|O_CLOEXEC 0600, full write, the old owner (fchown first: it clears setuid bits)
 * and mode, fsync, close, rename over the original, fsync of the directory. Exits 1 on any failure, temp removed.
 */
static void replace_atomically(int dfd, const char *file, const struct stat *old, const char *text, size_t len)
{
    remove_stale_temps(dfd);
    char tmp[64], hex[13];
    random_hex(hex);
    snprintf(tmp, sizeof tmp, "." SPEC_NAME ".%d.%s.tmp", (int)getpid(), hex);
    int fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        write_failed(file, "creating the temporary file", errno, FIX_DIR);
    const char *step = NULL, *fix = FIX_DIR;
    int err = 0;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            step = "write", err = w < 0 ? errno : EIO;
            break;
        }
        off += (size_t)w;
    }
    struct stat own;
    if (!step && (fstat(fd, &own) != 0 ||
                  ((own.st_uid != old->st_uid || own.st_gid != old->st_gid) && fchown(fd, old->st_uid, old->st_gid) != 0) ||
                  fchmod(fd, old->st_mode & 07777) != 0))
        step = "keeping owner and mode", err = errno, fix = FIX_OWNER;
    if (!step && fsync(fd) != 0)
        step = "fsync", err = errno;
    if (close(fd) != 0 && !step)
        step = "close", err = errno;
    if (!step && renameat(dfd, tmp, dfd, SPEC_NAME) != 0)
        step = "rename over the original", err = errno;
    if (step) {
        unlinkat(dfd, tmp, 0);
        write_failed(file, step, err, fix);
    }
    /* The rename is durable only once the directory entry is on disk. */
    if (fsync(dfd) != 0)
        write_failed(file, "fsync of the directory", errno, FIX_DIR);
}

/* ---- the warm path ------------------------------------------------------------------------------------------- */

/* An answer naming another runc than the view's is a confused service: the cold path decides. */
static void exec_runc(char **argv, const char *runc)
{
    argv[0] = (char *)runc;
    execve(runc, argv, environ);
}

/* Checks and applies a `write` answer; returns (cold path) when it does not match what the launcher scanned. */
static void apply_write(char **argv, const char *runc, const char *bundle, const struct stat *scanned, const char *cwd,
                        const struct answer *a)
{
    static char expected[PATH_MAX];
    if (!spec_path(expected, sizeof expected, cwd, bundle) || strcmp(a->file, expected) != 0)
        return;
    /* The directory as the runtime resolves it (following links, as stat(2) does), then the file in it. */
    char dir[PATH_MAX];
    size_t dlen = strlen(expected) - strlen("/" SPEC_NAME);
    memcpy(dir, expected, dlen);
    dir[dlen ? dlen : 1] = '\0';
    if (!dlen)
        dir[0] = '/';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    struct stat st, lst;
    char now[160];
    /* The identity the service read (stat, following links, as the view's fingerprints); a regular file itself
     * (writeFileAtomic refuses a link); the very file the launcher scanned (the path the runtime names it by is
     * lexical, runc's is the kernel's: "link/.." may differ). Else the cold path decides, or says why it refuses. */
    if (fstatat(dfd, SPEC_NAME, &st, 0) != 0 || (nvr_format_identity(&st, now, sizeof now), strcmp(now, a->ident) != 0) ||
        fstatat(dfd, SPEC_NAME, &lst, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(lst.st_mode) || lst.st_ino != st.st_ino ||
        lst.st_dev != st.st_dev || st.st_ino != scanned->st_ino || st.st_dev != scanned->st_dev) {
        close(dfd);
        return;
    }
    replace_atomically(dfd, expected, &lst, a->text, a->text_len);
    close(dfd);
    exec_runc(argv, runc);
    /* config.json is already the runtime's: running Node now would plan the edited spec again. */
    fail("cannot exec %s: %s; check the low-level runtime binary", runc, strerror(errno));
}

void nvr_serve_try(char **argv, const char *runc, const char *bundle, const struct stat *scanned, const char *log,
                   const char *log_format)
{
    g_log = log;
    g_log_format = log_format;
    static char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/' || !socket_trusted())
        return;
    int64_t deadline = now_ms() + NVR_SERVE_DEADLINE_MS;
    int fd = connect_service(deadline);
    if (fd < 0)
        return;
    size_t size = 0;
    char *buf = send_request(fd, deadline, argv, cwd) ? read_answer(fd, deadline, &size) : NULL;
    close(fd);
    struct answer a;
    if (buf && parse_answer(buf, size, &a) && strcmp(a.runc, runc) == 0) {
        if (a.write)
            apply_write(argv, runc, bundle, scanned, cwd, &a);
        else
            exec_runc(argv, runc); /* on failure (runc vanished), Node finds the runtime again, or says why not */
    }
    free(buf);
}
