#include "api/server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

struct api_server {
	struct MHD_Daemon *daemon;
	api_handler_fn handler;
	void *opaque;
	char *path;
	dev_t dev;                  /* the socket file we made, to remove only that one */
	ino_t ino;
};

/* One request's body as it arrives. */
struct request_ctx {
	char *body;
	size_t len;
	size_t total;               /* bytes announced or received, kept past the limit */
	bool too_large;
};

char *api_fault_json(const char *msg)
{
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, unsigned status, char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (body) {
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(body);
			return MHD_NO;
		}
		/* Firecracker's bodies are all JSON (swagger: produces
		 * application/json). */
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	} else {
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result too_large(struct MHD_Connection *conn, size_t size)
{
	char msg[160];

	/* micro_http answers an oversized payload with 400 and this
	 * message; so do we, for clients that look for it. */
	snprintf(msg, sizeof(msg),
		 "Request payload with size %zu is larger than the limit of %d allowed by server.",
		 size, API_MAX_BODY);
	return send_response(conn, 400, api_fault_json(msg));
}

/*
 * libmicrohttpd calls this once when the headers are in (*con_cls still
 * NULL), once per piece of body (upload_data set: consume it, queue
 * nothing), and once more when the request is complete (*upload_data_size
 * 0): then the request goes to the handler.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api_server *srv = cls;
	struct request_ctx *ctx = *con_cls;
	struct api_response resp = { 0 };
	struct api_request req;
	const char *clen;

	(void)version;
	if (!ctx) {
		ctx = calloc(1, sizeof(*ctx));
		if (!ctx)
			return MHD_NO;
		*con_cls = ctx;
		/* Refused before reading the body: libmicrohttpd then drops
		 * the rest and closes the connection after the answer. */
		clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (clen) {
			unsigned long long n = strtoull(clen, NULL, 10);

			if (n > API_MAX_BODY)
				return too_large(conn, (size_t)(n > SIZE_MAX ? SIZE_MAX : n));
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		ctx->total += n;
		if (ctx->too_large || ctx->total > API_MAX_BODY) {
			/* A chunked body with no announced size: counted and
			 * dropped, answered when it ends (the connection
			 * timeout bounds how long that may take). */
			ctx->too_large = true;
			free(ctx->body);
			ctx->body = NULL;
			return MHD_YES;
		}
		if (!ctx->body) {
			ctx->body = malloc(API_MAX_BODY + 1);
			if (!ctx->body)
				return MHD_NO;
		}
		memcpy(ctx->body + ctx->len, upload_data, n);
		ctx->len += n;
		ctx->body[ctx->len] = '\0';
		return MHD_YES;
	}
	if (ctx->too_large)
		return too_large(conn, ctx->total);

	req.method = method;
	req.path = url;
	req.body = ctx->len ? ctx->body : NULL;
	req.body_len = ctx->len;
	resp.status = 500;
	srv->handler(srv->opaque, &req, &resp);
	return send_response(conn, resp.status, resp.body);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request_ctx *ctx = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (ctx) {
		free(ctx->body);
		free(ctx);
		*con_cls = NULL;
	}
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	/* Clients that misbehave are the usual cause: debug, not warnings. */
	pr_debug("api: %s", line);
}

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

/* A socket file at path: refused if a process still accepts on it, removed
 * if it is left over from one that died (connect() is refused). */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret, e;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return fail(err, errlen, "%s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, "socket: %s", strerror(errno));
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	e = errno;
	close(fd);
	if (!ret)
		return fail(err, errlen, "%s is in use by another process", path);
	if (e != ECONNREFUSED)
		return fail(err, errlen, "%s: %s", path, strerror(e));
	if (unlink(path) && errno != ENOENT)
		return fail(err, errlen, "cannot remove the stale socket %s: %s", path,
			    strerror(errno));
	pr_info("api: removed the stale socket %s", path);
	return 0;
}

static int make_socket(struct api_server *srv, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (!*path)
		return fail(err, errlen, "the API socket path is empty");
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(err, errlen, "%s: a Unix socket path holds at most %zu bytes", path,
			    sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path));
	if (clear_stale(path, &sa, err, errlen))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(err, errlen, "socket: %s", strerror(errno));
	/* Linux creates the socket file with the socket inode's mode (minus
	 * the umask): set it before bind so the file is never reachable by
	 * others, even for a moment; the chmod after is for other kernels'
	 * sake. The API controls the VM: only its owner may connect. */
	if (fchmod(fd, 0600) && errno != EINVAL)
		pr_debug("api: fchmod on the socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fail(err, errlen, "%s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(sa.sun_path, 0600) || stat(sa.sun_path, &st) ||
	    listen(fd, API_MAX_CONNECTIONS)) {
		fail(err, errlen, "%s: %s", sa.sun_path, strerror(errno));
		unlink(sa.sun_path);
		close(fd);
		return -1;
	}
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	return fd;
}

static void remove_socket(struct api_server *srv)
{
	struct stat st;

	/* Only if the file is still ours: another process may have replaced
	 * it after deciding ours was stale. */
	if (!lstat(srv->path, &st) && st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
}

struct api_server *api_server_start(const char *socket_path, api_handler_fn handler,
				    void *opaque, char *err, size_t errlen)
{
	struct api_server *srv;
	int fd;

	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(socket_path))) {
		free(srv);
		fail(err, errlen, "out of memory");
		return NULL;
	}
	srv->handler = handler;
	srv->opaque = opaque;
	fd = make_socket(srv, socket_path, err, errlen);
	if (fd < 0) {
		free(srv->path);
		free(srv);
		return NULL;
	}
	/*
	 * A thread per connection: a handler that waits (InstanceStart, a
	 * pause) holds up its own client only, and a client that stalls
	 * mid-request holds one thread until the timeout. The connection
	 * limit bounds the threads; the memory limit bounds what one
	 * connection may buffer for its request line and headers.
	 */
	srv->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, srv,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
		MHD_OPTION_END);
	if (!srv->daemon) {
		fail(err, errlen, "%s: cannot start the HTTP server (libmicrohttpd)", socket_path);
		remove_socket(srv);
		close(fd);
		free(srv->path);
		free(srv);
		return NULL;
	}
	pr_info("api: listening on %s", socket_path);
	return srv;
}

void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	/* Joins the connection threads and closes the listening socket. */
	MHD_stop_daemon(srv->daemon);
	remove_socket(srv);
	free(srv->path);
	free(srv);
}
