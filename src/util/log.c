#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Atomic enum log_level current_level = LOG_WARN;
static _Atomic _Bool crlf;

/* The log file: fd stays the same number once opened (a new file is
 * dup2'ed onto it), so a thread writing while another reconfigures never
 * writes to a closed or reused descriptor. The settings are read without
 * the lock: a line may follow the old or the new ones. */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int file_fd = -1;
static _Atomic _Bool file_off, file_show_level, file_show_origin;
static char file_module[64];           /* "" for all; set before file_fd */
static char file_instance[65] = "anonymous-instance";

void log_set_crlf(_Bool on) { crlf = on; }

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }

static const char *const level_names[] = { "error", "warning", "info", "debug" };
/* Firecracker's level names in its log lines. */
static const char *const file_level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

/* "../src/virtio/net.c" -> "virtio/net.c": the path under src/. */
static const char *origin(const char *file)
{
	const char *p = strstr(file, "src/");

	return p ? p + 4 : file;
}

/* Appends to buf (len bytes, *n used), truncating at the end. */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	if (r > 0)
		*n = (size_t)r >= len - *n ? len - 1 : *n + (size_t)r;
}

size_t log_format_file_line(char *buf, size_t len, enum log_level level, const char *file,
			    int line, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char thread[16] = "?";
	size_t n = 0;

	if (len < 2)
		return 0;
	buf[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	pthread_getname_np(pthread_self(), thread, sizeof(thread));
	append(buf, len, &n, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s", tm.tm_year + 1900,
	       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec,
	       file_instance, thread);
	if (file_show_level)
		append(buf, len, &n, ":%s", file_level_names[level]);
	if (file_show_origin)
		append(buf, len, &n, ":%s:%d", origin(file), line);
	append(buf, len, &n, "] %s\n", msg);
	/* A truncated line still ends its line. */
	if (n == len - 1 && buf[n - 1] != '\n')
		buf[n - 1] = '\n';
	return n;
}

int log_set_file(const struct log_file_config *cfg, char *err, size_t errlen)
{
	struct stat st;
	int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
	int fd, old, ret = 0;

	if (!cfg->path) {
		snprintf(err, errlen, "no log_path");
		return -EINVAL;
	}
	/* A pipe is opened read-write: no reader is then no error, and the
	 * pipe is never broken (Firecracker does the same). */
	if (stat(cfg->path, &st) == 0 && S_ISFIFO(st.st_mode))
		flags = (flags & ~O_WRONLY) | O_RDWR;
	fd = open(cfg->path, flags | O_NOCTTY, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "Cannot initialize the logger: %s: %s", cfg->path,
			 strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "Cannot initialize the logger: %s: is a directory", cfg->path);
		return -EISDIR;
	}
	pthread_mutex_lock(&file_lock);
	file_off = cfg->off;
	file_show_level = cfg->show_level;
	file_show_origin = cfg->show_origin;
	snprintf(file_module, sizeof(file_module), "%s", cfg->module ? cfg->module : "");
	snprintf(file_instance, sizeof(file_instance), "%s",
		 cfg->instance_id ? cfg->instance_id : "anonymous-instance");
	old = file_fd;
	if (old < 0) {
		file_fd = fd;
	} else {
		if (dup3(fd, old, O_CLOEXEC) < 0) {
			ret = -errno;
			snprintf(err, errlen, "Cannot initialize the logger: %s: %s", cfg->path,
				 strerror(errno));
		}
		close(fd);
	}
	pthread_mutex_unlock(&file_lock);
	return ret;
}

static void write_file_line(enum log_level level, const char *file, int line, const char *msg)
{
	int fd = file_fd;
	char buf[1200];
	size_t n;

	if (fd < 0 || file_off)
		return;
	if (file_module[0] && strncmp(origin(file), file_module, strlen(file_module)))
		return;
	n = log_format_file_line(buf, sizeof(buf), level, file, line, msg);
	/* One write per line (O_APPEND): lines from several threads stay
	 * whole. A full pipe drops the line rather than stall the VMM. */
	if (write(fd, buf, n) < 0)
		return;
}

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	char msg[1024], out[1100];
	va_list ap;
	int n;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_file_line(level, file, line, msg);
	/* One write per line, so lines from several threads do not
	 * interleave; "\r\n" while the terminal is raw, so lines stay
	 * readable. */
	n = snprintf(out, sizeof(out), "popek: %s: %s%s\n", level_names[level], msg,
		     crlf ? "\r" : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	fwrite(out, 1, (size_t)n, stderr);
	fflush(stderr);
}

void log_warn_ratelimited(struct log_ratelimit *rl, const char *fmt, ...)
{
	struct timespec now;
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (rl->warned && now.tv_sec - rl->last_s < (long)rl->interval_s) {
		rl->suppressed++;
		pr_debug("%s: %s", rl->prefix, msg);
		return;
	}
	if (rl->suppressed)
		pr_warn("%s: %s (%u similar messages suppressed)", rl->prefix, msg, rl->suppressed);
	else
		pr_warn("%s: %s", rl->prefix, msg);
	rl->warned = 1;
	rl->last_s = now.tv_sec;
	rl->suppressed = 0;
}
