/* The messages between popek and popek-api (docs/api.md, "popek-api"):
 * JSON objects on a stream socket (the socketpair popek creates), each
 * preceded by its length as 4 bytes, big-endian. Either side treats a
 * frame that is too long, truncated, not JSON or not an object as the end
 * of the connection. Shared by both sides: no threads, no state. */
#ifndef POPEK_API_RPC_WIRE_H
#define POPEK_API_RPC_WIRE_H

#include <jansson.h>
#include <stddef.h>

/* Protocol version, sent in "hello": both sides come from one build. */
#define API_RPC_VERSION 1
/* Bound on one message (a VM configuration is a few KiB; 16 drives with
 * 4 KiB paths stay under 100 KiB). */
#define API_RPC_MAX_MSG (1u << 20)
/* The descriptor popek-api finds its end of the socketpair on. */
#define API_RPC_FD 3

/* Sends msg (not consumed) as one frame: 0, or -1 with err set (EPIPE
 * when the peer is gone; never raises SIGPIPE). */
int rpc_send(int fd, const json_t *msg, char *err, size_t errlen);

/*
 * Reads one frame: 1 with *msg a JSON object (the caller's reference),
 * 0 when the peer closed the connection between frames, -1 with err set on
 * anything else (I/O error, a frame over API_RPC_MAX_MSG or empty, EOF
 * inside a frame, invalid JSON, not an object, or timeout_ms passed; -1
 * waits as long as it takes).
 */
int rpc_recv(int fd, int timeout_ms, json_t **msg, char *err, size_t errlen);

/* A member of obj as a string, or NULL when absent or not a string. */
const char *rpc_str(const json_t *obj, const char *key);

#endif
