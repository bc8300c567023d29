/*
 * The ld.so.cache fast path (see ldcache_fast.h and README.md). What it reproduces of glibc 2.36's ldconfig
 * (elf/ldconfig.c search_dir + create_links, elf/cache.c add_to_cache/compare/save_cache, elf/readelflib.c), run
 * chrooted without -r, for the folders the hook adds:
 *   - every directory entry whose name _dl_is_dso accepts: a regular file is read as ELF (x86-64 -> flags 0x0303,
 *     i386 without DT_NEEDED/PT_INTERP -> 0x0001, other i386 objects decline), its DT_SONAME taken; a symlink is followed (inside the
 *     folder only) and counts as a link when its name is the target's soname or a ".so" prefix of it (then its own
 *     name is its key), else as a file;
 *   - one entry per soname and folder: a file beats a link, else the higher _dl_cache_libcmp name wins;
 *   - for a file whose name is not its soname, the soname link (relative, to the file's name) unless the soname
 *     already leads to that file or is something other than a link;
 *   - cache entries key = soname (or the link's name), value = folder "/" key, hwcap 0, osversion 0;
 *   - the other entries of the image's cache kept verbatim; all sorted with compare() (ties declined).
 * Everything else declines: the caller runs ldconfig. The image's files are hostile: every read is bounded and
 * bounds-checked, every path is opened through inroot.c or relative to a folder fd with O_NOFOLLOW.
 */
#define _GNU_SOURCE
#include "ldcache_fast.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inroot.h"

#define MAGIC_NEW "glibc-ld.so.cache1.1"
#define HDR 48
#define ENT 24
#define EXT_MAGIC 0xeaa42174u
#define MAX_GEN 512
#define MAX_LINK_HOPS 8
#define MAX_NAME 255

struct ent {
    int32_t flags;
    uint32_t osversion;
    uint64_t hwcap;
    const char *key, *value;
    int fresh;  /* from a folder scan (1) or kept from the image cache (0) */
    int folder; /* index of the folder for fresh entries */
};

struct lib { /* ldconfig's dlib_entry */
    char name[MAX_NAME + 1], soname[MAX_NAME + 1];
    int flag, is_link;
};

static int decline(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return 1;
}
#define NO(...) return decline(why, whylen, __VA_ARGS__)

/* _dl_cache_libcmp with glibc's int arithmetic; the callers only pass names whose digit runs are short (<= 9). */
int ldcache_libcmp(const char *p1, const char *p2)
{
    while (*p1 != '\0') {
        if (*p1 >= '0' && *p1 <= '9') {
            if (*p2 >= '0' && *p2 <= '9') {
                int val1 = *p1++ - '0', val2 = *p2++ - '0';
                while (*p1 >= '0' && *p1 <= '9')
                    val1 = val1 * 10 + *p1++ - '0';
                while (*p2 >= '0' && *p2 <= '9')
                    val2 = val2 * 10 + *p2++ - '0';
                if (val1 != val2)
                    return val1 - val2;
            } else
                return 1;
        } else if (*p2 >= '0' && *p2 <= '9')
            return -1;
        else if (*p1 != *p2)
            return *p1 - *p2;
        else {
            ++p1;
            ++p2;
        }
    }
    return *p1 - *p2;
}

/* Names the comparisons can handle exactly: printable ASCII, digit runs of at most 9 digits (no int overflow). */
static int plain_name(const char *s)
{
    int run = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e)
            return 0;
        run = (c >= '0' && c <= '9') ? run + 1 : 0;
        if (run > 9)
            return 0;
    }
    return 1;
}

/* glibc's cache.c compare(e1, e2) for entries without glibc-hwcaps: > 0 when e1 sorts after e2. */
static int compare(const struct ent *e1, const struct ent *e2)
{
    int res = ldcache_libcmp(e2->key, e1->key);
    if (res == 0) {
        if (e1->flags < e2->flags)
            return 1;
        if (e1->flags > e2->flags)
            return -1;
        int b1 = __builtin_popcountll(e1->hwcap), b2 = __builtin_popcountll(e2->hwcap);
        if (b2 > b1)
            return 1;
        if (b2 < b1)
            return -1;
        if (e2->hwcap > e1->hwcap)
            return 1;
        if (e2->hwcap < e1->hwcap)
            return -1;
        if (e2->osversion > e1->osversion)
            return 1;
        if (e2->osversion < e1->osversion)
            return -1;
    }
    return res;
}

static int is_dso(const char *name) /* _dl_is_dso */
{
    return ((strncmp(name, "lib", 3) == 0 || strncmp(name, "ld-", 3) == 0) && strstr(name, ".so") != NULL) ||
           strncmp(name, "ld.so.", 6) == 0 || strncmp(name, "ld64.so.", 8) == 0;
}

/* A subdirectory name ldconfig 2.36 on x86 descends into (legacy hwcaps, platforms, tls) or glibc-hwcaps. Broader
 * than is_hwcap_platform on purpose: any of these declines. */
static int hwcap_like(const char *name)
{
    static const char *const names[] = {"tls", "glibc-hwcaps", "x86_64", "x86-64", "i386", "i486", "i586", "i686",
                                        "haswell", "xeon_phi", "sse2", "avx512_1", "avx2", "nosegneg"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return strncasecmp(name, "x86-64-v", 8) == 0 || strncasecmp(name, "avx", 3) == 0 ||
           strncasecmp(name, "sse", 3) == 0;
}

/* ---- ELF: what readelflib.c takes from a library ------------------------------------------------------- */

/* The first HEAD_CAP bytes of the library being read (one read instead of one pread per field). */
#define HEAD_CAP (64u << 10)
static unsigned char g_head[HEAD_CAP];
static int g_head_fd = -1;
static size_t g_head_len;

static int rd(int fd, void *p, size_t n, uint64_t off, uint64_t size)
{
    if (off > size || n > size - off)
        return -1;
    if (fd == g_head_fd && off <= g_head_len && n <= g_head_len - off) {
        memcpy(p, g_head + off, n);
        return 0;
    }
    return pread(fd, p, n, (off_t)off) == (ssize_t)n ? 0 : -1;
}

static void load_head(int fd, uint64_t size)
{
    size_t want = size < HEAD_CAP ? (size_t)size : HEAD_CAP, len = 0;
    g_head_fd = -1;
    while (len < want) {
        ssize_t r = pread(fd, g_head + len, want - len, (off_t)len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    g_head_len = len;
    g_head_fd = fd;
}

struct elfinfo {
    int cls, machine, type;
    uint64_t phoff, phnum, phentsize;
};

static int elf_header(int fd, uint64_t size, struct elfinfo *e)
{
    unsigned char id[EI_NIDENT];
    if (rd(fd, id, sizeof id, 0, size) || memcmp(id, ELFMAG, SELFMAG) != 0 || id[EI_DATA] != ELFDATA2LSB)
        return -1;
    e->cls = id[EI_CLASS];
    if (e->cls == ELFCLASS64) {
        Elf64_Ehdr h;
        if (rd(fd, &h, sizeof h, 0, size) || h.e_phentsize != sizeof(Elf64_Phdr))
            return -1;
        e->machine = h.e_machine, e->type = h.e_type, e->phoff = h.e_phoff, e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
    } else if (e->cls == ELFCLASS32) {
        Elf32_Ehdr h;
        if (rd(fd, &h, sizeof h, 0, size) || h.e_phentsize != sizeof(Elf32_Phdr))
            return -1;
        e->machine = h.e_machine, e->type = h.e_type, e->phoff = h.e_phoff, e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
    } else
        return -1;
    return e->phnum == 0 || e->phnum > 256 ? -1 : 0;
}

struct ph {
    uint32_t type;
    uint64_t offset, vaddr, filesz, align;
};

static int phdr(int fd, uint64_t size, const struct elfinfo *e, uint64_t i, struct ph *p)
{
    if (e->cls == ELFCLASS64) {
        Elf64_Phdr h;
        if (rd(fd, &h, sizeof h, e->phoff + i * e->phentsize, size))
            return -1;
        p->type = h.p_type, p->offset = h.p_offset, p->vaddr = h.p_vaddr, p->filesz = h.p_filesz, p->align = h.p_align;
    } else {
        Elf32_Phdr h;
        if (rd(fd, &h, sizeof h, e->phoff + i * e->phentsize, size))
            return -1;
        p->type = h.p_type, p->offset = h.p_offset, p->vaddr = h.p_vaddr, p->filesz = h.p_filesz, p->align = h.p_align;
    }
    return 0;
}

/* 1 when a GNU property note names an x86 ISA level above the baseline (ldconfig 2.33+ records levels). */
static int has_isa_note(int fd, uint64_t size, const struct ph *p)
{
    if (p->filesz > 65536 || p->offset > size || p->filesz > size - p->offset)
        return -1;
    unsigned char buf[65536];
    if (rd(fd, buf, (size_t)p->filesz, p->offset, size))
        return -1;
    size_t off = 0, n = (size_t)p->filesz;
    while (off + 12 <= n) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, buf + off, 4), memcpy(&descsz, buf + off + 4, 4), memcpy(&type, buf + off + 8, 4);
        if (namesz > n || descsz > n)
            return -1;
        size_t align = p->align == 8 ? 7 : 3; /* the segment's alignment is its notes' (4 or 8) */
        size_t desc = (off + 12 + namesz + align) & ~align;
        if (desc > n || descsz > n - desc)
            return -1;
        if (type == NT_GNU_PROPERTY_TYPE_0 && namesz == 4 && memcmp(buf + off + 12, "GNU", 4) == 0) {
            for (size_t q = desc; q + 8 <= desc + descsz;) {
                uint32_t prt, prsz;
                memcpy(&prt, buf + q, 4), memcpy(&prsz, buf + q + 4, 4);
                if (prsz > descsz || q + 8 + prsz > desc + descsz)
                    return -1;
                /* X86_ISA_1_NEEDED: x86-64-baseline alone is what Debian's libc carries, cached with hwcap 0 by
                 * ldconfig 2.36 (verified); any higher level (or the old numbering) declines. */
                if (prt == 0xc0000001u)
                    return 1;
                if (prt == 0xc0008002u) {
                    uint32_t v = 0;
                    if (prsz != 4)
                        return 1;
                    memcpy(&v, buf + q + 8, 4);
                    if (v & ~1u)
                        return 1;
                }
                q += 8 + ((prsz + 7) & ~7u);
            }
        }
        off = desc + ((descsz + align) & ~align);
    }
    return 0;
}

/* The soname and ldconfig's flag of the library in fd (a regular file). 0 ok, -1 declined (why set). */
static int elf_soname_1(int fd, uint64_t size, const char *name, char soname[MAX_NAME + 1], int *flag, char *why,
                        size_t whylen);
static int elf_soname(int fd, const char *name, char soname[MAX_NAME + 1], int *flag, char *why, size_t whylen)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return decline(why, whylen, "%s: not a regular file", name), -1;
    uint64_t size = (uint64_t)st.st_size;
    load_head(fd, size);
    int ok = elf_soname_1(fd, size, name, soname, flag, why, whylen);
    g_head_fd = -1;
    return ok;
}

static int elf_soname_1(int fd, uint64_t size, const char *name, char soname[MAX_NAME + 1], int *flag, char *why,
                        size_t whylen)
{
    struct elfinfo e;
    if (elf_header(fd, size, &e) != 0)
        return decline(why, whylen, "%s: not an ELF file ldconfig would take", name), -1;
    if (e.type != ET_DYN || !((e.cls == ELFCLASS64 && e.machine == EM_X86_64) ||
                              (e.cls == ELFCLASS32 && e.machine == EM_386)))
        return decline(why, whylen, "%s: not an x86-64 or i386 shared object", name), -1;
    struct ph dyn = {0}, loads[64];
    int nloads = 0, have_dyn = 0, interp = 0;
    for (uint64_t i = 0; i < e.phnum; i++) {
        struct ph p;
        if (phdr(fd, size, &e, i, &p))
            return decline(why, whylen, "%s: program headers out of the file", name), -1;
        if (p.type == PT_DYNAMIC)
            dyn = p, have_dyn++;
        else if (p.type == PT_LOAD) {
            if (nloads == 64)
                return decline(why, whylen, "%s: too many segments", name), -1;
            loads[nloads++] = p;
        } else if (p.type == PT_NOTE || p.type == PT_GNU_PROPERTY) {
            int r = has_isa_note(fd, size, &p);
            if (r != 0)
                return decline(why, whylen, "%s: %s", name, r > 0 ? "has an x86 ISA level note" : "bad note"), -1;
        } else if (p.type == PT_INTERP)
            interp = 1;
    }
    if (have_dyn != 1)
        return decline(why, whylen, "%s: no (single) dynamic segment", name), -1;
    size_t dsz = e.cls == ELFCLASS64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
    uint64_t ndyn = dyn.filesz / dsz;
    if (ndyn > 4096)
        return decline(why, whylen, "%s: dynamic segment too large", name), -1;
    uint64_t strtab = 0, soname_off = UINT64_MAX, strsz = 0;
    int have_strtab = 0, cls_flag = 0; /* i386: 3 from libc.so.6/libm.so.6, -1 another known libc */
    uint64_t needed[256];
    int nneeded = 0;
    for (uint64_t i = 0; i < ndyn; i++) {
        int64_t tag;
        uint64_t val;
        if (e.cls == ELFCLASS64) {
            Elf64_Dyn d;
            if (rd(fd, &d, sizeof d, dyn.offset + i * dsz, size))
                return decline(why, whylen, "%s: dynamic segment out of the file", name), -1;
            tag = d.d_tag, val = d.d_un.d_val;
        } else {
            Elf32_Dyn d;
            if (rd(fd, &d, sizeof d, dyn.offset + i * dsz, size))
                return decline(why, whylen, "%s: dynamic segment out of the file", name), -1;
            tag = d.d_tag, val = d.d_un.d_val;
        }
        if (tag == DT_NULL)
            break;
        if (tag == DT_STRTAB)
            strtab = val, have_strtab = 1;
        else if (tag == DT_STRSZ)
            strsz = val;
        else if (tag == DT_SONAME && soname_off == UINT64_MAX)
            soname_off = val;
        else if (tag == DT_NEEDED && nneeded < 256)
            needed[nneeded++] = val;
    }
    if (!have_strtab || soname_off == UINT64_MAX)
        return decline(why, whylen, "%s: no DT_SONAME (ldconfig would guess one)", name), -1;
    uint64_t stroff = UINT64_MAX;
    for (int i = 0; i < nloads; i++) /* DT_STRTAB is an address: the PT_LOAD that maps it gives its offset */
        if (strtab >= loads[i].vaddr && strtab - loads[i].vaddr < loads[i].filesz) {
            stroff = loads[i].offset + (strtab - loads[i].vaddr);
            break;
        }
    if (stroff == UINT64_MAX || stroff > size)
        return decline(why, whylen, "%s: string table outside the file", name), -1;
    char s[MAX_NAME + 2];
    for (int k = -1; k < nneeded; k++) {
        uint64_t o = k < 0 ? soname_off : needed[k];
        if ((strsz && o >= strsz) || o > size - stroff)
            return decline(why, whylen, "%s: dynamic string out of range", name), -1;
        size_t avail = (size_t)(size - stroff - o < sizeof s ? size - stroff - o : sizeof s);
        memset(s, 0, sizeof s);
        if (rd(fd, s, avail, stroff + o, size))
            return decline(why, whylen, "%s: unreadable dynamic string", name), -1;
        if (strnlen(s, avail) > MAX_NAME || !memchr(s, '\0', avail))
            return decline(why, whylen, "%s: dynamic string too long", name), -1;
        if (k < 0) {
            if (!s[0] || strchr(s, '/') || !plain_name(s) || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return decline(why, whylen, "%s: soname ldconfig's rules are not modelled for", name), -1;
            strcpy(soname, s);
        } else if (cls_flag == 0 && e.cls == ELFCLASS32) {
            if (strcmp(s, "libc.so.6") == 0 || strcmp(s, "libm.so.6") == 0)
                cls_flag = 3;
            else if (strncmp(s, "libc.so", 7) == 0 || strncmp(s, "libm.so", 7) == 0 || strncmp(s, "ld-linux", 8) == 0 ||
                     strncmp(s, "ld.so", 5) == 0)
                cls_flag = -1;
        }
    }
    /* i386: readelflib classifies by DT_NEEDED (libc.so.6 -> libc6, libc.so.5 -> libc5, ...) and PT_INTERP. Only
     * the case verified against ldconfig here is modelled: no DT_NEEDED and no PT_INTERP -> plain ELF (0x0001, what
     * `ldconfig -p` shows as "(ELF)"); any other i386 object declines. */
    (void)cls_flag;
    if (e.cls == ELFCLASS64)
        *flag = 0x0303;
    else if (nneeded == 0 && !interp)
        *flag = 0x0001;
    else
        return decline(why, whylen, "%s: an i386 object with DT_NEEDED or PT_INTERP (not modelled)", name), -1;
    return 0;
}

/* ---- one folder: ldconfig's search_dir ---------------------------------------------------------------- */

/* Follows name's symlinks inside dfd (targets without '/'), to a regular file: its fd and final name. -2 when the
 * chain dangles inside the folder, -1 when it leaves the folder, loops or ends on a non-regular file. */
static int follow_in_dir(int dfd, const char *name, char final[MAX_NAME + 1])
{
    char cur[MAX_NAME + 1];
    snprintf(cur, sizeof cur, "%s", name);
    for (int hop = 0; hop <= MAX_LINK_HOPS; hop++) {
        struct stat st;
        if (fstatat(dfd, cur, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return hop > 0 && errno == ENOENT ? -2 : -1;
        if (S_ISREG(st.st_mode)) {
            int fd = openat(dfd, cur, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            strcpy(final, cur);
            return fd;
        }
        if (!S_ISLNK(st.st_mode))
            return -1;
        char t[MAX_NAME + 2];
        ssize_t n = readlinkat(dfd, cur, t, sizeof t);
        if (n <= 0 || n > MAX_NAME)
            return -1;
        t[n] = '\0';
        if (memchr(t, '/', (size_t)n) || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
            return -1;
        strcpy(cur, t);
    }
    return -1;
}

struct scan {
    struct lib *libs;
    int nlibs, cap;
};

static int add_lib(struct scan *sc, const char *dname, const char *soname, int flag, int is_link, char *why,
                   size_t whylen)
{
    for (int i = 0; i < sc->nlibs; i++) {
        struct lib *l = &sc->libs[i];
        if (strcmp(l->soname, soname) != 0)
            continue;
        if (l->flag != flag)
            NO("%s and %s have the same soname but different types", l->name, dname);
        int c = ldcache_libcmp(l->name, dname);
        if (c == 0 && is_link == l->is_link)
            NO("%s and %s: versions ldconfig would pick between by directory order", l->name, dname);
        if ((!is_link && l->is_link) || (is_link == l->is_link && c < 0)) {
            strcpy(l->name, dname);
            l->is_link = is_link;
        }
        return 0;
    }
    if (sc->nlibs == sc->cap) {
        int ncap = sc->cap ? sc->cap * 2 : 64;
        struct lib *n = realloc(sc->libs, (size_t)ncap * sizeof *n);
        if (!n)
            NO("out of memory");
        sc->libs = n, sc->cap = ncap;
    }
    struct lib *l = &sc->libs[sc->nlibs++];
    strcpy(l->name, dname);
    strcpy(l->soname, soname);
    l->flag = flag, l->is_link = is_link;
    return 0;
}

static int scan_folder(int dfd, const char *folder, struct scan *sc, char *why, size_t whylen)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        NO("%s: cannot read it", folder);
    }
    int count = 0, r = 0;
    for (struct dirent *de; r == 0 && (de = readdir(d));) {
        const char *n = de->d_name;
        if (++count > LDCACHE_MAX_SCAN) {
            r = decline(why, whylen, "%s: more than %d entries", folder, LDCACHE_MAX_SCAN);
            break;
        }
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            r = decline(why, whylen, "%s/%s: %s", folder, n, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode))
            continue; /* ldconfig looks at links, files and directories only */
        if (!is_dso(n)) {
            if (!S_ISREG(st.st_mode) && hwcap_like(n))
                r = decline(why, whylen, "%s/%s: a hwcaps subdirectory", folder, n);
            continue;
        }
        if (strlen(n) >= 10 && strstr(n, ".#prelink#")) {
            r = decline(why, whylen, "%s/%s: a prelink temporary", folder, n);
            break;
        }
        if (!plain_name(n) || strlen(n) > MAX_NAME) {
            r = decline(why, whylen, "%s: a library name the fast path does not model", folder);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            r = decline(why, whylen, "%s/%s: a directory with a library's name", folder, n);
            break;
        }
        char final[MAX_NAME + 1], soname[MAX_NAME + 1];
        int is_link = S_ISLNK(st.st_mode), flag;
        int lfd = is_link ? follow_in_dir(dfd, n, final)
                          : openat(dfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (lfd == -2 && !strstr(n, ".so.")) /* ldconfig: "Cannot stat", skipped (removed when named *.so.*) */
            continue;
        if (lfd < 0) {
            r = decline(why, whylen, "%s/%s: a symbolic link that does not lead to a file in the folder", folder, n);
            break;
        }
        unsigned char magic[SELFMAG];
        struct stat lst;
        if (fstat(lfd, &lst) == 0 && lst.st_size >= 64 && pread(lfd, magic, SELFMAG, 0) == SELFMAG &&
            memcmp(magic, ELFMAG, SELFMAG) != 0) {
            close(lfd); /* readelflib's process_file: not ELF (a linker script like libc.so): skipped */
            continue;
        }
        int bad = elf_soname(lfd, n, soname, &flag, why, whylen);
        close(lfd);
        if (bad) {
            r = 1;
            break;
        }
        if (is_link && strcmp(n, soname) != 0) {
            size_t len = strlen(n);
            if (len < 3 || strcmp(n + len - 3, ".so") != 0 || strncmp(n, soname, len) != 0)
                is_link = 0; /* ldconfig: "we treat it as a normal file" */
        }
        if (!is_link && S_ISLNK(st.st_mode)) {
            r = decline(why, whylen, "%s/%s: a link ldconfig would treat as a library file", folder, n);
            break;
        }
        r = add_lib(sc, n, is_link ? n : soname, flag, is_link, why, whylen);
    }
    closedir(d);
    return r;
}

/* ---- the image's cache ----------------------------------------------------------------------------- */

static int read_all(int fd, size_t size, unsigned char **out)
{
    unsigned char *b = malloc(size ? size : 1);
    size_t len = 0;
    if (!b)
        return -1;
    while (len < size) {
        ssize_t n = read(fd, b + len, size - len);
        if (n <= 0) {
            free(b);
            return -1;
        }
        len += (size_t)n;
    }
    *out = b;
    return 0;
}

/* A string at off: within the file, NUL-terminated there. */
static const char *str_at(const unsigned char *c, size_t size, uint32_t off)
{
    if (off >= size || !memchr(c + off, '\0', size - off))
        return NULL;
    return (const char *)c + off;
}

struct cache {
    unsigned char *data;
    size_t size;
    uint32_t nlibs;
    struct ent *ents;
    char gen[MAX_GEN + 1];
};

static int parse_cache(struct cache *k, char *why, size_t whylen)
{
    const unsigned char *c = k->data;
    size_t size = k->size;
    uint32_t nlibs, lenstr, ext;
    if (size < HDR || memcmp(c, MAGIC_NEW, 20) != 0)
        NO("/etc/ld.so.cache: not in the new format only (glibc-ld.so.cache1.1 at offset 0)");
    memcpy(&nlibs, c + 20, 4), memcpy(&lenstr, c + 24, 4), memcpy(&ext, c + 32, 4);
    if ((c[28] & 3) != 2)
        NO("/etc/ld.so.cache: not marked little-endian");
    for (int i = 29; i < 32; i++)
        if (c[i])
            NO("/etc/ld.so.cache: unknown header bytes");
    for (int i = 36; i < HDR; i++)
        if (c[i])
            NO("/etc/ld.so.cache: unknown header bytes");
    if (nlibs > LDCACHE_MAX_ENTRIES)
        NO("/etc/ld.so.cache: more than %d entries", LDCACHE_MAX_ENTRIES);
    if ((uint64_t)HDR + (uint64_t)nlibs * ENT + lenstr > size)
        NO("/etc/ld.so.cache: entries or strings past the end");
    /* The extension directory: exactly the generator section, which must be the host ldconfig's. */
    if (ext == 0 || ext % 4 || ext < HDR + (uint64_t)nlibs * ENT || (uint64_t)ext + 8 > size)
        NO("/etc/ld.so.cache: no extension directory where ldconfig puts one");
    uint32_t magic, count;
    memcpy(&magic, c + ext, 4), memcpy(&count, c + ext + 4, 4);
    if (magic != EXT_MAGIC || count != 1 || (uint64_t)ext + 8 + 16 > size)
        NO("/etc/ld.so.cache: extensions other than the generator string");
    uint32_t tag, fl, off, sz;
    memcpy(&tag, c + ext + 8, 4), memcpy(&fl, c + ext + 12, 4), memcpy(&off, c + ext + 16, 4),
        memcpy(&sz, c + ext + 20, 4);
    if (tag != 0 || fl != 0 || sz == 0 || sz > MAX_GEN || off > size || sz > size - off || memchr(c + off, 0, sz))
        NO("/etc/ld.so.cache: an extension section the fast path does not understand");
    memcpy(k->gen, c + off, sz);
    k->gen[sz] = '\0';
    k->nlibs = nlibs;
    k->ents = calloc(nlibs ? nlibs : 1, sizeof *k->ents);
    if (!k->ents)
        NO("out of memory");
    for (uint32_t i = 0; i < nlibs; i++) {
        const unsigned char *e = c + HDR + (size_t)i * ENT;
        struct ent *x = &k->ents[i];
        uint32_t key, value;
        memcpy(&x->flags, e, 4), memcpy(&key, e + 4, 4), memcpy(&value, e + 8, 4), memcpy(&x->osversion, e + 12, 4),
            memcpy(&x->hwcap, e + 16, 8);
        x->key = str_at(c, size, key);
        x->value = str_at(c, size, value);
        if (!x->key || !x->value)
            NO("/etc/ld.so.cache: entry %u: string offset out of range", i);
        if (x->hwcap || x->osversion)
            NO("/etc/ld.so.cache: entry %u has hwcap/osversion bits (hwcaps subdirectories)", i);
        if (!plain_name(x->key) || x->value[0] != '/' || strlen(x->value) >= PATH_MAX || !strrchr(x->value, '/')[1])
            NO("/etc/ld.so.cache: entry %u: a name the fast path does not model", i);
        if (i > 0 && compare(&k->ents[i - 1], x) > 0)
            NO("/etc/ld.so.cache: entries not in ldconfig's order (not written by ldconfig)");
    }
    return 0;
}

/* The generator string compiled into the host ldconfig ("ldconfig (Debian GLIBC 2.36-9) stable release version
 * 2.36"): what it would write into the cache. "" when not found. */
static void ldconfig_generator(int mfd, char out[MAX_GEN + 1])
{
    struct stat st;
    out[0] = '\0';
    if (fstat(mfd, &st) != 0 || st.st_size <= 0 || st.st_size > (256 << 20))
        return;
    unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, mfd, 0);
    if (m == MAP_FAILED)
        return;
    size_t size = (size_t)st.st_size;
    static const char needle[] = " release version ";
    for (unsigned char *p = m; (p = memmem(p, size - (size_t)(p - m), needle, sizeof needle - 1)); p++) {
        unsigned char *s = p;
        while (s > m && s[-1] != '\0' && p - s < MAX_GEN)
            s--;
        unsigned char *e = memchr(p, '\0', size - (size_t)(p - m));
        if (e && (s == m || s[-1] == '\0') && e - s <= MAX_GEN && e - s > 9 && memcmp(s, "ldconfig ", 9) == 0) {
            memcpy(out, s, (size_t)(e - s));
            out[e - s] = '\0';
            break;
        }
    }
    munmap(m, size);
}

/* ---- writing ------------------------------------------------------------------------------------------ */

/* The soname link ldconfig's create_links makes: soname -> name, unless soname already leads to name's inode or
 * is not a link. 0 done, -1 failed (errno). */
static int soname_link(int dfd, const char *name, const char *soname)
{
    struct stat lib, so;
    if (fstatat(dfd, name, &lib, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    if (fstatat(dfd, soname, &so, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISLNK(so.st_mode))
            return 0; /* "is not a symbolic link": left alone */
        char final[MAX_NAME + 1];
        int fd = follow_in_dir(dfd, soname, final);
        if (fd >= 0) {
            struct stat t;
            int same = fstat(fd, &t) == 0 && t.st_dev == lib.st_dev && t.st_ino == lib.st_ino;
            close(fd);
            if (same)
                return 0;
        }
        char tmp[NAME_MAX + 1];
        int made = -1;
        for (int i = 0; i < 100 && made != 0; i++) {
            snprintf(tmp, sizeof tmp, ".nvidia-runtime-soname.%d.%d", (int)getpid(), i);
            made = symlinkat(name, dfd, tmp);
            if (made != 0 && errno != EEXIST)
                return -1;
        }
        if (made != 0)
            return -1;
        if (renameat(dfd, tmp, dfd, soname) != 0) {
            int err = errno;
            unlinkat(dfd, tmp, 0);
            return errno = err, -1;
        }
        return 0;
    }
    if (errno != ENOENT)
        return -1;
    return symlinkat(name, dfd, soname) == 0 || errno == EEXIST ? 0 : -1;
}

static int cmp_qsort(const void *a, const void *b)
{
    return compare(*(const struct ent *const *)a, *(const struct ent *const *)b);
}

/* The new cache: header, entries, strings (each once), the generator extension; atomically in /etc. */
static int write_cache(int rootfd, struct ent **v, size_t n, const char *gen, char *why, size_t whylen)
{
    size_t strbytes = 0;
    for (size_t i = 0; i < n; i++)
        strbytes += strlen(v[i]->key) + 1 + strlen(v[i]->value) + 1;
    size_t strstart = HDR + n * ENT, extoff = (strstart + strbytes + 3) & ~(size_t)3, genlen = strlen(gen);
    size_t total = extoff + 8 + 16 + genlen;
    if (total > LDCACHE_MAX_SIZE)
        NO("the new cache would be larger than %u bytes", LDCACHE_MAX_SIZE);
    unsigned char *b = calloc(1, total);
    if (!b)
        NO("out of memory");
    memcpy(b, MAGIC_NEW, 20);
    uint32_t u = (uint32_t)n, ls = (uint32_t)strbytes, eo = (uint32_t)extoff;
    memcpy(b + 20, &u, 4), memcpy(b + 24, &ls, 4), b[28] = 2, memcpy(b + 32, &eo, 4);
    size_t s = strstart;
    for (size_t i = 0; i < n; i++) {
        unsigned char *e = b + HDR + i * ENT;
        uint32_t key = (uint32_t)s, value;
        size_t kl = strlen(v[i]->key) + 1, vl = strlen(v[i]->value) + 1;
        memcpy(b + s, v[i]->key, kl), s += kl;
        value = (uint32_t)s;
        memcpy(b + s, v[i]->value, vl), s += vl;
        memcpy(e, &v[i]->flags, 4), memcpy(e + 4, &key, 4), memcpy(e + 8, &value, 4);
        memcpy(e + 12, &v[i]->osversion, 4), memcpy(e + 16, &v[i]->hwcap, 8);
    }
    uint32_t magic = EXT_MAGIC, one = 1, zero = 0, goff = (uint32_t)(extoff + 24), gl = (uint32_t)genlen;
    memcpy(b + extoff, &magic, 4), memcpy(b + extoff + 4, &one, 4), memcpy(b + extoff + 8, &zero, 4);
    memcpy(b + extoff + 12, &zero, 4), memcpy(b + extoff + 16, &goff, 4), memcpy(b + extoff + 20, &gl, 4);
    memcpy(b + extoff + 24, gen, genlen);

    char leaf[NAME_MAX + 1], tmp[NAME_MAX + 1];
    int dfd = inroot_open_parent(rootfd, "/etc/ld.so.cache", leaf), fd = -1;
    if (dfd < 0) {
        free(b);
        NO("/etc in the rootfs: %s", strerror(errno));
    }
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof tmp, ".ld.so.cache.nvidia-runtime.%d.%d", (int)getpid(), i);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    int err = 0;
    if (fd < 0)
        err = errno;
    for (size_t off = 0; !err && off < total;) {
        ssize_t w = write(fd, b + off, total - off);
        if (w <= 0)
            err = w < 0 ? errno : EIO;
        else
            off += (size_t)w;
    }
    if (!err && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        err = errno;
    if (fd >= 0 && close(fd) != 0 && !err)
        err = errno;
    if (!err && renameat(dfd, tmp, dfd, leaf) != 0)
        err = errno;
    if (err && fd >= 0)
        unlinkat(dfd, tmp, 0);
    free(b);
    /* No directory fsync: ldconfig does not make one either (its save_cache: fsync the temp file, rename), and
     * the cache is rewritten on every container start; it costs milliseconds on ext4. */
    close(dfd);
    if (err)
        NO("writing /etc/ld.so.cache: %s", strerror(err));
    return 0;
}

/* ---- the whole ---------------------------------------------------------------------------------------- */

/* The folder's fd, only when no component of its path is a symlink (ldconfig's paths are then ours); -2 when a
 * component is missing, -1 otherwise. */
static int open_folder_plain(int rootfd, const char *folder, struct stat *st)
{
    char prefix[PATH_MAX];
    size_t len = strlen(folder);
    if (len >= sizeof prefix || folder[0] != '/')
        return -1;
    for (size_t i = 1; i <= len; i++) {
        if (folder[i] != '/' && folder[i] != '\0')
            continue;
        memcpy(prefix, folder, i);
        prefix[i] = '\0';
        char leaf[NAME_MAX + 1];
        int p = inroot_open_parent(rootfd, prefix, leaf);
        if (p < 0)
            return -1;
        struct stat s;
        if (fstatat(p, leaf, &s, AT_SYMLINK_NOFOLLOW) != 0) {
            int missing = errno == ENOENT;
            close(p);
            return missing ? -2 : -1; /* ldconfig: "Can't open directory", nothing from it */
        }
        int ok = S_ISDIR(s.st_mode);
        close(p);
        if (!ok || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
            return -1;
    }
    int fd = inroot_open(rootfd, folder, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, st) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int same_dir_as(int rootfd, const char *dir, const struct stat *f)
{
    int fd = inroot_open(rootfd, dir, O_PATH | O_DIRECTORY);
    struct stat s;
    int same = fd >= 0 && fstat(fd, &s) == 0 && s.st_dev == f->st_dev && s.st_ino == f->st_ino;
    if (fd >= 0)
        close(fd);
    return same;
}

static int dir_of(const char *value, char out[PATH_MAX])
{
    const char *slash = strrchr(value, '/');
    size_t n = (size_t)(slash - value);
    if (n >= PATH_MAX)
        return -1;
    memcpy(out, value, n ? n : 1);
    out[n ? n : 1] = '\0';
    return 0;
}

int ldcache_fast(int rootfd, int ldconfig_mfd, const char *const *folders, int nfolders, const char *const *others,
                 int nothers, char *why, size_t whylen)
{
    struct cache k = {0};
    struct scan sc[64] = {{0}};
    int dfds[64], r = 1;
    struct stat fst[64];
    struct ent *fresh = NULL, **all = NULL;
    size_t nfresh = 0;
    for (int i = 0; i < 64; i++)
        dfds[i] = -1;
    if (nfolders <= 0 || nfolders > 64) {
        decline(why, whylen, "no folders");
        goto out;
    }
    char gen[MAX_GEN + 1];
    ldconfig_generator(ldconfig_mfd, gen);
    if (!gen[0]) {
        decline(why, whylen, "the host ldconfig's generator string was not found");
        goto out;
    }
    int cfd = inroot_open(rootfd, "/etc/ld.so.cache", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    struct stat cst;
    if (cfd < 0 || fstat(cfd, &cst) != 0 || !S_ISREG(cst.st_mode) || cst.st_size > (off_t)LDCACHE_MAX_SIZE ||
        read_all(cfd, (size_t)cst.st_size, &k.data) != 0) {
        decline(why, whylen, "/etc/ld.so.cache: %s", cfd < 0 ? strerror(errno) : "not a regular file of at most 32 MiB");
        if (cfd >= 0)
            close(cfd);
        goto out;
    }
    close(cfd);
    k.size = (size_t)cst.st_size;
    if (parse_cache(&k, why, whylen))
        goto out;
    if (strcmp(k.gen, gen) != 0) {
        decline(why, whylen, "the image's cache was written by '%s', not by the host's '%s'", k.gen, gen);
        goto out;
    }
    for (int i = 0; i < nfolders; i++) {
        for (const char *p = folders[i]; *p;) { /* a hwcap-named component gives its entries hwcap bits */
            char comp[NAME_MAX + 1];
            size_t n = strcspn(++p, "/");
            snprintf(comp, sizeof comp, "%.*s", (int)(n > NAME_MAX ? NAME_MAX : n), p);
            if (hwcap_like(comp)) {
                decline(why, whylen, "%s: a hwcaps directory", folders[i]);
                goto out;
            }
            p += n;
        }
        if ((dfds[i] = open_folder_plain(rootfd, folders[i], &fst[i])) == -2)
            continue;
        if (dfds[i] < 0) {
            decline(why, whylen, "%s: missing, or reached through a symbolic link", folders[i]);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (dfds[j] >= 0 && fst[j].st_dev == fst[i].st_dev && fst[j].st_ino == fst[i].st_ino) {
                decline(why, whylen, "%s and %s are the same directory", folders[j], folders[i]);
                goto out;
            }
    }
    /* Another name for a folder (merged /usr: /lib/x86_64-linux-gnu) would make ldconfig scan it under that name. */
    for (int i = 0; i < nfolders; i++) {
        if (dfds[i] < 0)
            continue;
        for (int j = 0; j < nothers; j++)
            if (strcmp(others[j], folders[i]) != 0 && same_dir_as(rootfd, others[j], &fst[i])) {
                decline(why, whylen, "%s is also %s", folders[i], others[j]);
                goto out;
            }
        static char seen[64][PATH_MAX];
        int nseen = 0;
        for (uint32_t e = 0; e < k.nlibs; e++) {
            char d[PATH_MAX];
            int dup = 0;
            if (dir_of(k.ents[e].value, d) != 0)
                continue;
            for (int q = 0; q < nseen && !dup; q++)
                dup = strcmp(seen[q], d) == 0;
            if (dup)
                continue;
            if (nseen < 64)
                strcpy(seen[nseen++], d);
            int is_folder = 0;
            for (int f = 0; f < nfolders; f++)
                is_folder |= strcmp(d, folders[f]) == 0;
            if (!is_folder && same_dir_as(rootfd, d, &fst[i])) {
                decline(why, whylen, "%s is also %s in the image's cache", folders[i], d);
                goto out;
            }
        }
    }
    for (int i = 0; i < nfolders; i++)
        if (dfds[i] >= 0 && scan_folder(dfds[i], folders[i], &sc[i], why, whylen))
            goto out;
    size_t total = 0;
    for (int i = 0; i < nfolders; i++)
        total += (size_t)sc[i].nlibs;
    fresh = calloc(total ? total : 1, sizeof *fresh);
    all = calloc(total + k.nlibs + 1, sizeof *all);
    if (!fresh || !all) {
        decline(why, whylen, "out of memory");
        goto out;
    }
    for (int i = 0; i < nfolders; i++)
        for (int j = 0; j < sc[i].nlibs; j++) {
            struct ent *x = &fresh[nfresh++];
            size_t vl = strlen(folders[i]) + 1 + strlen(sc[i].libs[j].soname) + 1;
            char *value = malloc(vl);
            if (!value) {
                decline(why, whylen, "out of memory");
                goto out;
            }
            snprintf(value, vl, "%s/%s", folders[i], sc[i].libs[j].soname);
            x->flags = sc[i].libs[j].flag, x->key = sc[i].libs[j].soname, x->value = value;
            x->fresh = 1, x->folder = i;
            /* The image's own entry for this library, when it has one, must agree (same ldconfig rules). */
            for (uint32_t e = 0; e < k.nlibs; e++)
                if (strcmp(k.ents[e].value, value) == 0 && strcmp(k.ents[e].key, x->key) == 0 &&
                    k.ents[e].flags != x->flags) {
                    decline(why, whylen, "%s: the image's cache has flags %#x, the fast path %#x", value,
                            (unsigned)k.ents[e].flags, (unsigned)x->flags);
                    goto out;
                }
        }
    size_t n = 0;
    for (uint32_t e = 0; e < k.nlibs; e++) {
        char d[PATH_MAX];
        int in_folder = 0;
        if (dir_of(k.ents[e].value, d) == 0)
            for (int f = 0; f < nfolders; f++)
                in_folder |= strcmp(d, folders[f]) == 0;
        if (!in_folder)
            all[n++] = &k.ents[e];
    }
    if (n + nfresh > LDCACHE_MAX_ENTRIES) {
        decline(why, whylen, "more than %d entries", LDCACHE_MAX_ENTRIES);
        goto out;
    }
    for (size_t i = 0; i < nfresh; i++)
        all[n++] = &fresh[i];
    qsort(all, n, sizeof *all, cmp_qsort);
    /* Equal entries keep ldconfig's directory order, which the fast path does not model: only the kept entries
     * (already in that order, qsort aside) may tie with each other. */
    for (size_t i = 1; i < n; i++)
        if (compare(all[i - 1], all[i]) == 0 && (all[i - 1]->fresh || all[i]->fresh)) {
            decline(why, whylen, "%s is in several directories (their order decides)", all[i]->key);
            goto out;
        }
    /* qsort is not stable: restore the image order among tied kept entries (pointers into k.ents ascend). */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && compare(all[j - 1], all[j]) == 0 && all[j - 1] > all[j]; j--) {
            struct ent *t = all[j];
            all[j] = all[j - 1];
            all[j - 1] = t;
        }
    /* Certain now: links first (as ldconfig makes them before it writes the cache), then the cache. */
    for (int i = 0; i < nfolders; i++)
        for (int j = 0; j < sc[i].nlibs; j++) {
            struct lib *l = &sc[i].libs[j];
            if (!l->is_link && strcmp(l->name, l->soname) != 0 && soname_link(dfds[i], l->name, l->soname) != 0) {
                decline(why, whylen, "%s/%s: cannot make the link: %s", folders[i], l->soname, strerror(errno));
                goto out;
            }
        }
    r = write_cache(rootfd, all, n, gen, why, whylen);
out:
    for (size_t i = 0; i < nfresh; i++)
        free((char *)fresh[i].value);
    free(fresh);
    free(all);
    for (int i = 0; i < 64; i++) {
        free(sc[i].libs);
        if (dfds[i] >= 0)
            close(dfds[i]);
    }
    free(k.ents);
    free(k.data);
    return r;
}
