/* popek-api's side of the connection to popek (rpc.h, rpc_wire.h): a
 * struct api_ops whose every call is a request to popek and its reply.
 * Calls are serialised here (the routes already make them one at a time);
 * one that finds the connection broken fails with "popek is gone". */
#ifndef POPEK_API_RPC_CLIENT_H
#define POPEK_API_RPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "api/routes.h"

struct metrics;
struct vm_config;

/* How long popek-api waits for popek's "hello", and for popek's counters
 * as it exits. */
#define API_RPC_HELLO_TIMEOUT_MS 10000
#define API_RPC_LAST_METRICS_TIMEOUT_MS 2000

struct api_rpc_client;

/* Reads popek's "hello" on fd (the client owns fd from then on, also on
 * failure). NULL with err set when it does not come in time or is
 * malformed. */
struct api_rpc_client *api_rpc_client_open(int fd, int timeout_ms, char *err, size_t errlen);
/* Closes the connection and frees. */
void api_rpc_client_close(struct api_rpc_client *c);

/* The ops to give api_routes_create, with the client as opaque: NULL where
 * popek has no such control. */
const struct api_ops *api_rpc_client_ops(struct api_rpc_client *c);
/* From "hello": the configuration so far (NULL: defaults), the instance id
 * (NULL: default) and popek's log level (util/log.h). */
const struct vm_config *api_rpc_client_config(struct api_rpc_client *c);
const char *api_rpc_client_id(struct api_rpc_client *c);
int api_rpc_client_log_level(struct api_rpc_client *c);

/* Tells popek that the API is served ("ready"), or why it cannot be
 * ("failed", one line: popek reports it). 0, or -1 with err set. */
int api_rpc_client_ready(struct api_rpc_client *c, char *err, size_t errlen);
int api_rpc_client_failed(struct api_rpc_client *c, const char *why);

/* Stores popek's counters (absolute values) in m, so that m's next line
 * reports them per period like its own; timeout_ms -1 waits as long as it
 * takes. 0, or -1 with err set. */
int api_rpc_client_fetch_metrics(struct api_rpc_client *c, struct metrics *m, int timeout_ms,
				 char *err, size_t errlen);

/* False once the connection broke (popek exited, or a malformed reply). */
bool api_rpc_client_alive(struct api_rpc_client *c);
/* The socket, for polling for hang-up (POLLRDHUP) only. */
int api_rpc_client_fd(struct api_rpc_client *c);

#endif
