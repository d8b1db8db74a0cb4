/* Parsing of numbers and sizes given on the command line. */
#ifndef POPEK_UTIL_PARSE_H
#define POPEK_UTIL_PARSE_H

#include <stdint.h>

/* A decimal byte count with an optional binary suffix: K, M, G, T (any
 * case, optionally followed by "iB" or "B"), e.g. "256M", "8G", "65536".
 * Returns 0, -EINVAL (empty, junk, no digits, negative) or -ERANGE. */
int parse_size(const char *s, uint64_t *out);

/* A decimal integer in [min, max]; -EINVAL for junk, -ERANGE outside. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Formats bytes as the largest exact binary unit ("256 MiB", "1536 KiB"). */
const char *format_size(uint64_t bytes, char *buf, unsigned buflen);

#endif
