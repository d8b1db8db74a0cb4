#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum log_level current_level = LOG_WARN;
static _Atomic _Bool crlf;

void log_set_crlf(_Bool on) { crlf = on; }

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n;

	if (level > current_level)
		return;
	/* One write per line, so lines from several threads do not interleave;
	 * "\r\n" while the terminal is raw, so lines stay readable. */
	n = snprintf(line, sizeof(line), "popek: %s: ", names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	if (crlf)
		line[n++] = '\r';
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
}
