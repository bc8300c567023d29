/* A small, strict JSON reader: just enough for the hook to take one string out of the OCI state (`bundle`)
 * or a bundle's config.json (`root.path`). The whole document is checked against the RFC 8259 grammar
 * (whitespace, escapes, numbers, literals, nesting up to JSON_MAX_DEPTH); the buffer is length-delimited,
 * never read past `len` and needs no NUL terminator. See README.md for the rules on member names. */
#ifndef NVR_JSON_H
#define NVR_JSON_H
#include <stddef.h>

#define JSON_MAX_DEPTH 512

enum json_result { JSON_BAD = -1, JSON_OK = 0, JSON_ABSENT = 1 };

/* Finds the string at path[0].path[1]...path[npath-1] (members of nested objects, from the top-level object).
 * JSON_OK: *out is a malloc'd, NUL-terminated UTF-8 copy (escapes decoded, surrogate pairs joined).
 * JSON_ABSENT: a member along the path is missing or null.
 * JSON_BAD: malformed document, a member on the path appears twice (names compared ignoring ASCII case, as
 * Go's encoding/json matches them), an object on the path is not an object, the value is not a string, or it
 * is not valid UTF-8 / has a lone surrogate / has an embedded NUL; `why` (if not NULL) says which, in words. */
enum json_result json_get_string(const char *doc, size_t len, const char *const *path, size_t npath, char **out,
                                 char *why, size_t whylen);
#endif
