/* popek's side of the API. The HTTP server (libmicrohttpd, server.c and
 * routes.c) runs in a process of its own, popek-api, which popek starts
 * when it is given an API socket: popek itself stays statically linked and
 * the HTTP parser stays out of the address space that holds guest memory
 * and the KVM descriptors (docs/api.md "popek-api", docs/threat-model.md).
 *
 * popek-api implements struct api_ops by messages over a socketpair
 * (rpc_wire.h); a thread here reads them and calls the VMM's api_ops, one
 * call at a time, exactly as routes.h describes them. Everything popek-api
 * sends is checked here again: a configuration goes through config.c's
 * parser, numbers through range checks; a malformed message ends the
 * connection. */
#ifndef POPEK_API_RPC_H
#define POPEK_API_RPC_H

#include <stddef.h>
#include <sys/types.h>

#include "api/routes.h"

struct metrics;
struct vm_config;

/* How long api_rpc_wait_ready waits for popek-api to listen, and
 * api_rpc_stop for it to exit after SIGTERM before SIGKILL. */
#define API_RPC_READY_TIMEOUT_S 30
#define API_RPC_STOP_TIMEOUT_MS 5000

struct api_rpc_options {
	/* popek-api to run; NULL: $POPEK_API_BINARY, else "popek-api" in the
	 * directory of /proc/self/exe. */
	const char *binary;
	/* The configuration so far (--config-file), copied to popek-api: GET
	 * /vm/config shows it, its "metrics" section starts the metrics
	 * writer there and its "logger" section comes back as a
	 * configure_logger call. NULL: Firecracker's defaults. */
	const struct vm_config *initial;
	/* GET / "id"; NULL: "anonymous-instance". */
	const char *instance_id;
	/* The VMM's counters: popek-api writes them into its metrics lines
	 * (read when it flushes; docs/api.md "Metrics"). Must outlive the
	 * server. NULL: none. */
	struct metrics *metrics;
	/* Called (with the ops' opaque, on the server thread) before the
	 * counters are read, to bring them up to date. NULL: none. */
	void (*refresh_metrics)(void *opaque);
};

struct api_rpc_server;

/*
 * Starts popek-api on socket_path with the socketpair as its fd 3 (in a
 * session of its own, stdin and stdout on /dev/null, stderr shared) and
 * the thread that serves its requests with ops (routes.h; any may be NULL
 * and is then refused by popek-api). ops may be called from that thread
 * as soon as this returns (configure_logger, for the initial "logger"
 * section, before popek-api is ready). NULL with one line in err when
 * popek-api cannot be started (not found, not executable).
 */
struct api_rpc_server *api_rpc_start(const char *socket_path, const char *popek_api_path,
				     const struct api_ops *ops, void *opaque, char *err,
				     size_t errlen);
struct api_rpc_server *api_rpc_start_opts(const char *socket_path,
					  const struct api_rpc_options *opts,
					  const struct api_ops *ops, void *opaque, char *err,
					  size_t errlen);

/* Waits until popek-api listens on the socket (it sends "ready"): 0, or -1
 * with popek-api's own one-line reason in err (socket in use, bad path,
 * metrics path that cannot be opened, ...) or how it exited. Call
 * api_rpc_stop either way. */
int api_rpc_wait_ready(struct api_rpc_server *s, char *err, size_t errlen);

/* popek-api's process id (0 for api_rpc_attach). */
pid_t api_rpc_pid(const struct api_rpc_server *s);

/*
 * Ends popek-api (SIGTERM; SIGKILL after API_RPC_STOP_TIMEOUT_MS) and
 * waits for it, then ends the thread. Requests keep being served until
 * popek-api has exited: it asks for the VMM's counters once more for its
 * last metrics line. Not from inside an api_ops call. NULL is ignored.
 */
void api_rpc_stop(struct api_rpc_server *s);

/* The serving thread on a connected socket of the caller's, without a
 * process (unit tests): sends "hello" and serves until the peer closes.
 * api_rpc_stop then shuts the socket down and closes it. */
struct api_rpc_server *api_rpc_attach(int fd, const struct api_rpc_options *opts,
				      const struct api_ops *ops, void *opaque, char *err,
				      size_t errlen);

#endif
