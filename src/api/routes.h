/* The endpoints of Firecracker's API (swagger spec:
 * src/firecracker/swagger/firecracker.yaml): paths, methods, bodies, status
 * codes and fault messages, over a VM configuration (vmm/config.h) and a
 * controller the VMM provides (struct api_ops). docs/api.md lists what is
 * implemented and how popek differs. */
#ifndef POPEK_API_ROUTES_H
#define POPEK_API_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "api/server.h"
#include "vmm/config.h"

struct metrics;

/* GET / "state" (swagger: InstanceInfo). */
enum vm_state { VM_STATE_NOT_STARTED, VM_STATE_RUNNING, VM_STATE_PAUSED };

/*
 * What the VMM does for the API. Each call is made with the routes' lock
 * held, so calls never overlap, and may block (InstanceStart until the VM
 * runs, pause until every vCPU is out of KVM_RUN). Each returns 0 or
 * negative with one line in err, which becomes the 400's fault_message.
 * Any of them may be NULL: the request is then refused with
 * "... is not supported by this build".
 */
struct api_ops {
	/* PUT /actions InstanceStart: build and run the VM from cfg (valid
	 * only during the call: copy what must outlive it). */
	int (*start)(void *opaque, const struct vm_config *cfg, char *err, size_t errlen);
	/* PATCH /vm {"state": "Paused" | "Resumed"} */
	int (*pause)(void *opaque, char *err, size_t errlen);
	int (*resume)(void *opaque, char *err, size_t errlen);
	/* PUT /actions SendCtrlAltDel (i8042 on x86, as Firecracker) */
	int (*ctrl_alt_del)(void *opaque, char *err, size_t errlen);
	/* PATCH /balloon after start */
	int (*set_balloon_target)(void *opaque, uint32_t amount_mib, char *err, size_t errlen);
	/* PATCH /balloon/statistics after start (never switches 0 <-> non-0) */
	int (*set_balloon_stats_interval)(void *opaque, uint32_t interval_s, char *err,
					  size_t errlen);
	/* GET /balloon/statistics after start: *json_out a malloc'ed
	 * BalloonStats object (swagger), freed by the routes. */
	int (*balloon_stats)(void *opaque, char **json_out, char *err, size_t errlen);
	/* PATCH /drives/{id} after start: drive holds the new path_on_host
	 * and rate_limiter. */
	int (*update_drive)(void *opaque, const struct drive_config *drive, char *err,
			    size_t errlen);
	/* PATCH /network-interfaces/{id} after start: new rate limiters. */
	int (*update_net)(void *opaque, const struct net_config *iface, char *err, size_t errlen);
	/* PUT /logger (before start); and at api_routes_create when the
	 * configuration file has a "logger" section. NULL: the level applies
	 * to popek's log (util/log.h) and a log_path is refused. */
	int (*configure_logger)(void *opaque, const struct logger_config *logger, char *err,
				size_t errlen);
	/* The VM's state; NULL: the routes track it from start/pause/resume. */
	enum vm_state (*state)(void *opaque);
};

struct api_routes;

/*
 * initial: the configuration so far (from --config-file), copied; NULL for
 * defaults. Its "metrics" section starts the metrics writer and its
 * "logger" section goes to ops->configure_logger now. metrics: the
 * registry to count API requests in and flush (the VMM's, so its counters
 * go to the same lines); NULL: a private one. instance_id: GET / "id"
 * (NULL: Firecracker's default, "anonymous-instance").
 */
struct api_routes *api_routes_create(const struct api_ops *ops, void *opaque,
				     struct metrics *metrics, const struct vm_config *initial,
				     const char *instance_id, char *err, size_t errlen);
void api_routes_destroy(struct api_routes *r);

/* The api_handler_fn to give api_server_start, with the routes as opaque. */
void api_routes_handle(void *routes, const struct api_request *req, struct api_response *resp);

/* The metrics registry the routes count in. */
struct metrics *api_routes_metrics(struct api_routes *r);

#endif
