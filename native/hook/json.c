/* See json.h. A recursive-descent checker over [s, end) that decodes only the one string it was asked for.
 * Strictness where it matters for us: the grammar everywhere, and for the returned string also valid UTF-8,
 * no lone surrogate, no NUL. Other strings are checked for grammar only (escapes, control characters): Go's
 * encoding/json (runc, containerd, podman) accepts invalid UTF-8 there, and refusing a container over bytes
 * we never use would gain nothing. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const unsigned char *s, *start, *end;
    const char *const *path;
    size_t npath;
    char *result; /* the decoded string at the full path, once seen */
    char *why;
    size_t whylen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
    if (p->why && p->whylen) {
        int n = snprintf(p->why, p->whylen, "at byte %zu: ", (size_t)(p->s - p->start));
        if (n >= 0 && (size_t)n < p->whylen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->why + n, p->whylen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* "root.path" for upto = 2: the member names on the path, for messages. */
static const char *dotted(const struct parser *p, size_t upto)
{
    static char buf[256];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < upto && i < p->npath; i++) {
        int w = snprintf(buf + n, sizeof buf - n, "%s%s", i ? "." : "", p->path[i]);
        if (w < 0 || (size_t)w >= sizeof buf - n)
            break;
        n += (size_t)w;
    }
    return buf;
}

static void ws(struct parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int is_digit(const struct parser *p) { return p->s < p->end && *p->s >= '0' && *p->s <= '9'; }

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at q (which must lie within the buffer), or -1. */
static long hex4(const struct parser *p, const unsigned char *q)
{
    long v = 0;
    if (p->end - q < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence at q (lead byte >= 0x80), 0 if ill-formed (RFC 3629 table). */
static size_t utf8_len(const unsigned char *q, size_t left)
{
    unsigned char c = q[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED) /* UTF-16 surrogates are not characters */
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (left < n || q[1] < lo || q[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (q[i] < 0x80 || q[i] > 0xBF)
            return 0;
    return n;
}

/* Appends b to out while there is room; always counts, so a first pass with cap 0 measures. */
static void put(char *out, size_t cap, size_t *n, unsigned char b)
{
    if (*n < cap)
        out[*n] = (char)b;
    (*n)++;
}

static void put_utf8(char *out, size_t cap, size_t *n, unsigned long cp)
{
    if (cp < 0x80) {
        put(out, cap, n, (unsigned char)cp);
    } else if (cp < 0x800) {
        put(out, cap, n, (unsigned char)(0xC0 | (cp >> 6)));
        put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        put(out, cap, n, (unsigned char)(0xE0 | (cp >> 12)));
        put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else {
        put(out, cap, n, (unsigned char)(0xF0 | (cp >> 18)));
        put(out, cap, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3F)));
        put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3F)));
    }
}

/* The string at p->s (which is '"'), decoded into out[0..cap) ; *len gets the full decoded length. strict:
 * this is the string we return (UTF-8, surrogates, NUL checked). */
static int string(struct parser *p, char *out, size_t cap, size_t *len, int strict)
{
    size_t n = 0;
    p->s++;
    for (;;) {
        if (p->s >= p->end)
            return fail(p, "unterminated string");
        unsigned char c = *p->s;
        if (c == '"') {
            p->s++;
            *len = n;
            return 0;
        }
        if (c < 0x20)
            return fail(p, "control character 0x%02x in a string", c);
        if (c != '\\') {
            size_t k = 1;
            if (strict && c >= 0x80 && !(k = utf8_len(p->s, (size_t)(p->end - p->s))))
                return fail(p, "'%s' is not valid UTF-8", dotted(p, p->npath));
            for (size_t i = 0; i < k; i++)
                put(out, cap, &n, *p->s++);
            continue;
        }
        if (p->end - p->s < 2)
            return fail(p, "unterminated string");
        c = p->s[1];
        p->s += 2;
        switch (c) {
        case '"': case '\\': case '/': put(out, cap, &n, c); break;
        case 'b': put(out, cap, &n, '\b'); break;
        case 'f': put(out, cap, &n, '\f'); break;
        case 'n': put(out, cap, &n, '\n'); break;
        case 'r': put(out, cap, &n, '\r'); break;
        case 't': put(out, cap, &n, '\t'); break;
        case 'u': {
            long cp = hex4(p, p->s), lo;
            if (cp < 0)
                return fail(p, "\\u needs 4 hex digits");
            p->s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u' &&
                (lo = hex4(p, p->s + 2)) >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->s += 6;
            }
            if (strict && cp >= 0xD800 && cp <= 0xDFFF)
                return fail(p, "'%s' has a lone UTF-16 surrogate", dotted(p, p->npath));
            if (strict && cp == 0)
                return fail(p, "'%s' has an embedded NUL (\\u0000)", dotted(p, p->npath));
            put_utf8(out, cap, &n, (unsigned long)cp);
            break;
        }
        default:
            return fail(p, "invalid escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
}

/* The string we were asked for: measured, then decoded into a buffer of the right size. */
static int take_string(struct parser *p)
{
    const unsigned char *at = p->s;
    size_t n, m;
    if (string(p, NULL, 0, &n, 1) < 0)
        return -1;
    p->result = malloc(n + 1);
    if (!p->result)
        return fail(p, "out of memory");
    p->s = at;
    string(p, p->result, n, &m, 1); /* cannot fail: same bytes */
    p->result[n] = '\0';
    return 0;
}

static int number(struct parser *p)
{
    if (*p->s == '-')
        p->s++;
    if (p->s < p->end && *p->s == '0')
        p->s++;
    else if (is_digit(p))
        while (is_digit(p))
            p->s++;
    else
        return fail(p, "invalid number");
    if (p->s < p->end && *p->s == '.') {
        p->s++;
        if (!is_digit(p))
            return fail(p, "invalid number");
        while (is_digit(p))
            p->s++;
    }
    if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
        p->s++;
        if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
            p->s++;
        if (!is_digit(p))
            return fail(p, "invalid number");
        while (is_digit(p))
            p->s++;
    }
    return 0;
}

static int literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n) != 0)
        return fail(p, "invalid literal");
    p->s += n;
    return 0;
}

/* Member names match ignoring ASCII case, like Go's encoding/json (for names without 'k'/'s', where Go
 * would also fold U+212A/U+017F; ours have neither). */
static int name_eq(const char *key, size_t klen, const char *want)
{
    if (klen != strlen(want))
        return 0;
    for (size_t i = 0; i < klen; i++) {
        char a = key[i], b = want[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int value(struct parser *p, long level, int depth);

/* An object; level >= 0: it is the one on the path, and its member path[level] is looked at. */
static int object(struct parser *p, long level, int depth)
{
    int matched = 0;
    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        return 0;
    }
    for (;;) {
        char key[64];
        size_t klen;
        ws(p);
        if (p->s >= p->end || *p->s != '"')
            return fail(p, "expected a member name");
        if (string(p, key, sizeof key, &klen, 0) < 0)
            return -1;
        int match = level >= 0 && klen <= sizeof key && name_eq(key, klen, p->path[level]);
        if (match && matched++)
            return fail(p, "member '%s' appears twice (names compared ignoring case)",
                        dotted(p, (size_t)level + 1));
        ws(p);
        if (p->s >= p->end || *p->s != ':')
            return fail(p, "expected ':'");
        p->s++;
        if (value(p, match ? level + 1 : -1, depth + 1) < 0)
            return -1;
        ws(p);
        if (p->s >= p->end)
            return fail(p, "unexpected end of the document");
        if (*p->s == '}') {
            p->s++;
            return 0;
        }
        if (*p->s != ',')
            return fail(p, "expected ',' or '}'");
        p->s++;
    }
}

static int array(struct parser *p, int depth)
{
    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == ']') {
        p->s++;
        return 0;
    }
    for (;;) {
        if (value(p, -1, depth + 1) < 0)
            return -1;
        ws(p);
        if (p->s >= p->end)
            return fail(p, "unexpected end of the document");
        if (*p->s == ']') {
            p->s++;
            return 0;
        }
        if (*p->s != ',')
            return fail(p, "expected ',' or ']'");
        p->s++;
    }
}

/* Any value. level >= 0: it is at path[0..level) — an object we descend into while level < npath, the
 * string we return when level == npath; null is "absent" either way; any other type is an error. */
static int value(struct parser *p, long level, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
    ws(p);
    if (p->s >= p->end)
        return fail(p, "unexpected end of the document");
    int want_string = level >= 0 && (size_t)level == p->npath;
    int want_object = level >= 0 && (size_t)level < p->npath;
    unsigned char c = *p->s;
    if ((want_object && c != '{' && (c != 'n' || level == 0)) || (want_string && c != '"' && c != 'n')) {
        if (level == 0)
            return fail(p, "the document is not a JSON object");
        return fail(p, "'%s' is not %s", dotted(p, (size_t)level), want_string ? "a string" : "an object");
    }
    switch (c) {
    case '{': return object(p, want_object ? level : -1, depth);
    case '[': return array(p, depth);
    case '"': {
        size_t n;
        return want_string ? take_string(p) : string(p, NULL, 0, &n, 0);
    }
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return number(p);
        return fail(p, c >= 0x20 && c < 0x7f ? "unexpected '%c'" : "unexpected byte 0x%02x", c);
    }
}

enum json_result json_get_string(const char *doc, size_t len, const char *const *path, size_t npath, char **out,
                                 char *why, size_t whylen)
{
    struct parser p = {(const unsigned char *)doc, (const unsigned char *)doc, (const unsigned char *)doc + len,
                       path, npath, NULL, why, whylen};
    *out = NULL;
    if (npath == 0)
        return fail(&p, "empty member path"), JSON_BAD;
    int r = value(&p, 0, 1);
    if (r == 0) {
        ws(&p);
        if (p.s != p.end)
            r = fail(&p, "unexpected data after the document");
    }
    if (r < 0) {
        free(p.result);
        return JSON_BAD;
    }
    if (!p.result)
        return JSON_ABSENT;
    *out = p.result;
    return JSON_OK;
}
