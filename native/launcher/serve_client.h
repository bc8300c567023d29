/*
 * The warm path's client (docs/warm-path.md): the launcher asks `nvidia-runtime serve` over NVR_SERVE_SOCKET for a
 * GPU create instead of starting Node. Single-threaded, libc only, never blocks past NVR_SERVE_DEADLINE_MS.
 */
#ifndef NVR_SERVE_CLIENT_H
#define NVR_SERVE_CLIENT_H

#include <stddef.h>
#include <sys/stat.h>

/* Provided by launcher.c: the one trust rule and the one identity format (launcher view, src/launcher-contract.ts). */
int nvr_trusted(const struct stat *st);
void nvr_format_identity(const struct stat *st, char *out, size_t n);

/*
 * Asks the service about this create/run. runc: the valid view's runc; bundle: the bundle the launcher scanned
 * (relative to the cwd, as given); scanned: the fstat of the config.json the launcher scanned in it; log, log_format:
 * runc's --log and --log-format or NULL (an error gets a runc-style line there, as the runtime writes). Returns only when the cold path (Node) must run: no service, an untrusted socket
 * or peer, a `cold` answer, any malformed, late, oversized or mismatching answer. Otherwise it does not return: it
 * execs runc (answer `runc`, or `write` after replacing config.json), or exits 1 after one line on stderr when the
 * atomic replacement of config.json fails (nothing replaced).
 */
void nvr_serve_try(char **argv, const char *runc, const char *bundle, const struct stat *scanned, const char *log,
                   const char *log_format);

#endif /* NVR_SERVE_CLIENT_H */
