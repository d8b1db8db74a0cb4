/* HTTP/1.1 on a Unix socket (libmicrohttpd), for the Firecracker-compatible
 * API. The server knows nothing of endpoints: it reads a request, bounds
 * its body, and hands it to a handler (routes.c) that fills a response. */
#ifndef POPEK_API_SERVER_H
#define POPEK_API_SERVER_H

#include <stddef.h>

/* Firecracker's default request payload limit (--http-api-max-payload-size,
 * micro_http's MAX_PAYLOAD_SIZE). */
#define API_MAX_BODY 51200
/* Concurrent connections, each served by a thread of its own. */
#define API_MAX_CONNECTIONS 64
/* An idle or stalled connection is closed after this many seconds. */
#define API_CONNECTION_TIMEOUT_S 60
/* Per-connection buffer for the request line and headers (libmicrohttpd's
 * default is 32 KiB); the body is copied out of it as it arrives. */
#define API_CONNECTION_MEMORY (16 * 1024)

struct api_request {
	const char *method;         /* "GET", "PUT", "PATCH", or anything a client sent */
	const char *path;           /* decoded, without the query string */
	const char *body;           /* NUL-terminated; NULL when there is none */
	size_t body_len;
};

struct api_response {
	unsigned status;            /* e.g. 200, 204, 400 */
	char *body;                 /* malloc'ed JSON, freed by the server; NULL: none */
};

/* Called from the connection's thread, concurrently for several
 * connections: the handler serialises what it must. */
typedef void (*api_handler_fn)(void *opaque, const struct api_request *req,
			       struct api_response *resp);

struct api_server;

/* Binds socket_path (mode 0600; a stale socket file left by a dead process
 * is replaced, a live one or any other file is refused) and serves until
 * api_server_stop. NULL with err set on failure. */
struct api_server *api_server_start(const char *socket_path, api_handler_fn handler,
				    void *opaque, char *err, size_t errlen);
/* Closes every connection, waits for the handlers in progress, removes the
 * socket file. */
void api_server_stop(struct api_server *srv);

/* {"fault_message": msg}, malloc'ed (NULL on allocation failure). */
char *api_fault_json(const char *msg);

#endif
