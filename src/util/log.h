/* Levelled log lines: on stderr as "popek: <level>: message", and, once
 * a log file is configured (the API's PUT /logger, Firecracker's logger),
 * also there in Firecracker's format:
 *
 *   2026-11-24T01:02:03.123456789 [instance-id:thread:LEVEL:file:line] message
 *
 * (":LEVEL" with show_level, ":file:line" with show_log_origin). */
#ifndef POPEK_UTIL_LOG_H
#define POPEK_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Ends lines with "\r\n": set while the host terminal is in raw mode. */
void log_set_crlf(_Bool on);
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Where log lines also go. path: a file (created 0600, appended to) or a
 * named pipe (opened read-write and non-blocking, so a missing reader
 * neither blocks nor loses the pipe: lines that do not fit are dropped);
 * off: nothing goes there; module: only lines whose origin (the source
 * path under src/, e.g. "virtio/net.c") starts with it, NULL for all;
 * instance_id: NULL for "anonymous-instance". A later call replaces the
 * file in place (threads logging meanwhile write to one or the other).
 * 0, or -errno with one line in err naming the path. */
struct log_file_config {
	const char *path;
	bool off;
	bool show_level;
	bool show_origin;
	const char *module;
	const char *instance_id;
};
int log_set_file(const struct log_file_config *cfg, char *err, size_t errlen);

/* Formats one log-file line (without writing it): for tests. Returns its
 * length, truncated to fit len. */
size_t log_format_file_line(char *buf, size_t len, enum log_level level, const char *file,
			    int line, const char *msg);

/* Warnings a guest can trigger at will: at most one line per interval;
 * the rest go to the debug level and are counted in the next line. */
struct log_ratelimit {
	const char *prefix;      /* e.g. "virtio-net" */
	unsigned interval_s;
	_Bool warned;
	long last_s;             /* CLOCK_MONOTONIC seconds of the last line */
	unsigned suppressed;
};

void log_warn_ratelimited(struct log_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   log_msg_at(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define pr_warn(...)  log_msg_at(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define pr_info(...)  log_msg_at(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define pr_debug(...) log_msg_at(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
