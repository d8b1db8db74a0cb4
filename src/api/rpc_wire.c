#include "api/rpc_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int rpc_send(int fd, const json_t *msg, char *err, size_t errlen)
{
	char *body, *buf;
	size_t len, off;
	ssize_t n;

	body = json_dumps(msg, JSON_COMPACT);
	if (!body)
		return fail(err, errlen, "out of memory");
	len = strlen(body);
	if (len > API_RPC_MAX_MSG) {
		free(body);
		return fail(err, errlen, "message of %zu bytes is over the limit of %u", len,
			    API_RPC_MAX_MSG);
	}
	/* One buffer, so that a frame normally goes out in one send(). */
	buf = malloc(len + 4);
	if (!buf) {
		free(body);
		return fail(err, errlen, "out of memory");
	}
	buf[0] = (char)(len >> 24);
	buf[1] = (char)(len >> 16);
	buf[2] = (char)(len >> 8);
	buf[3] = (char)len;
	memcpy(buf + 4, body, len);
	free(body);
	for (off = 0; off < len + 4; off += (size_t)n) {
		n = send(fd, buf + off, len + 4 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0) {
			fail(err, errlen, "send: %s", strerror(errno));
			free(buf);
			return -1;
		}
	}
	free(buf);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes: len, 0 at EOF before the first byte, or -1. */
static ssize_t read_full(int fd, void *buf, size_t len, int64_t deadline, char *err,
			 size_t errlen)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (deadline >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int64_t left = deadline - now_ms();
			int r;

			if (left < 0)
				left = 0;
			r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return fail(err, errlen, "poll: %s", strerror(errno));
			if (!r) {
				if (now_ms() < deadline)
					continue;
				return fail(err, errlen, "no message within the time allowed");
			}
		}
		n = recv(fd, (char *)buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* A peer that exits with a message of ours unread resets the
		 * connection: between frames, that is its end like any other. */
		if (n < 0 && (errno != ECONNRESET || got))
			return fail(err, errlen, "recv: %s", strerror(errno));
		if (n <= 0) {
			if (!got)
				return 0;
			return fail(err, errlen, "connection closed inside a message");
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int rpc_recv(int fd, int timeout_ms, json_t **msg, char *err, size_t errlen)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	unsigned char hdr[4];
	json_error_t jerr;
	json_t *root;
	uint32_t len;
	ssize_t n;
	char *buf;

	*msg = NULL;
	n = read_full(fd, hdr, sizeof(hdr), deadline, err, errlen);
	if (n <= 0)
		return (int)n;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (!len || len > API_RPC_MAX_MSG)
		return fail(err, errlen, "message length %u is outside 1..%u", len,
			    API_RPC_MAX_MSG);
	buf = malloc(len);
	if (!buf)
		return fail(err, errlen, "out of memory");
	n = read_full(fd, buf, len, deadline, err, errlen);
	if (n <= 0) {
		free(buf);
		if (!n)
			fail(err, errlen, "connection closed inside a message");
		return -1;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!root)
		return fail(err, errlen, "invalid JSON in a message: %s", jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, errlen, "a message is not a JSON object");
	}
	*msg = root;
	return 1;
}

const char *rpc_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}
