/* The fast path of update-ldcache (README.md "The ld.so.cache fast path"): the container's /etc/ld.so.cache written
 * by the hook itself from the image's cache plus a fresh scan of the injected folders, with the soname links ldconfig
 * would make, instead of forking the confined host ldconfig. It declines (returns 1, nothing written, the reason in
 * why) whenever it is not certain to produce what that ldconfig would; the caller then runs ldconfig. */
#ifndef NVR_LDCACHE_FAST_H
#define NVR_LDCACHE_FAST_H
#include <stddef.h>

#define LDCACHE_MAX_ENTRIES 65536   /* entries in the image's cache */
#define LDCACHE_MAX_SIZE (32u << 20) /* bytes of the image's cache */
#define LDCACHE_MAX_SCAN 8192        /* directory entries per folder */

/*
 * rootfd: the rootfs (O_PATH). ldconfig_mfd: the sealed copy of the host ldconfig that the fallback would run (its
 * generator string must equal the image cache's). folders: the --folder dirs (absolute, normalised, distinct).
 * others: every other directory ldconfig would scan as far as the hook knows (ld.so.conf(+conf.d), the trusted
 * dirs): none may be the same directory as a folder under another name. Returns 0 when the cache and links were
 * written, 1 when it declined (why says why; nothing in the rootfs changed, or only links ldconfig makes too).
 */
int ldcache_fast(int rootfd, int ldconfig_mfd, const char *const *folders, int nfolders, const char *const *others,
                 int nothers, char *why, size_t whylen);

/* glibc's _dl_cache_libcmp (elf/dl-cache.c): digit runs compare numerically. Exposed for the tests' sake. */
int ldcache_libcmp(const char *p1, const char *p2);
#endif
