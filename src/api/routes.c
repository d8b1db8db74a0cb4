#include "api/routes.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "util/log.h"

/* Firecracker's fault messages (VmmActionError, RequestError). */
#define NOT_AFTER_BOOT  "The requested operation is not supported after starting the microVM."
#define NOT_BEFORE_BOOT "The requested operation is not supported before starting the microVM."
#define DESERIALIZE     "An error occurred when deserializing the json body of a request: "
#define NO_BALLOON      "No balloon device found."

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ERRLEN 512

enum phase { ANY_TIME, PRE_BOOT, POST_BOOT };

struct api_routes;
typedef void (*route_fn)(struct api_routes *r, const char *id, const struct api_request *req,
			 struct api_response *resp);

struct route {
	const char *method;
	const char *path;           /* "drives/" ends in '/': an {id} follows */
	enum phase phase;
	route_fn fn;
	const char *metric;         /* <method>_api_requests.<metric>_count / _fails */
};

struct api_routes {
	pthread_mutex_t lock;
	const struct api_ops *ops;
	void *opaque;
	struct vm_config cfg;
	enum vm_state own_state;    /* when ops->state is NULL */
	char *instance_id;
	struct metrics *metrics;
	bool own_metrics;
	struct metrics_counter *requests, *errors;
	struct metrics_counter **counts, **fails;   /* per route */
};

static void reply(struct api_response *resp, unsigned status, char *body)
{
	free(resp->body);
	resp->status = status;
	resp->body = body;
}

static void fault(struct api_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fault(struct api_response *resp, const char *fmt, ...)
{
	char msg[ERRLEN + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply(resp, 400, api_fault_json(msg));
}

/* A refusal from config.c, worded as Firecracker words its classes. */
static void config_fault(struct api_response *resp, int ret, const char *err)
{
	if (ret == CONFIG_EPARSE)
		fault(resp, DESERIALIZE "%s.", err);
	else
		fault(resp, "%s", err);
}

static void unsupported_op(struct api_response *resp, const char *what)
{
	fault(resp, "%s is not supported by this build of popek", what);
}

static enum vm_state state(struct api_routes *r)
{
	return r->ops->state ? r->ops->state(r->opaque) : r->own_state;
}

/* ---- GET ---- */

static void get_info(struct api_routes *r, const char *id, const struct api_request *req,
		     struct api_response *resp)
{
	static const char *const names[] = { "Not started", "Running", "Paused" };
	enum vm_state s = state(r);
	json_t *o;

	(void)id;
	(void)req;
	o = json_pack("{s:s,s:s,s:s,s:s}", "id", r->instance_id, "state",
		      s <= VM_STATE_PAUSED ? names[s] : "Running", "vmm_version", POPEK_VERSION,
		      "app_name", "popek");
	reply(resp, 200, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

static void get_version(struct api_routes *r, const char *id, const struct api_request *req,
			struct api_response *resp)
{
	json_t *o;

	(void)r;
	(void)id;
	(void)req;
	/* The field is Firecracker's name; the value is popek's version
	 * (docs/api.md). */
	o = json_pack("{s:s}", "firecracker_version", POPEK_VERSION);
	reply(resp, 200, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

static void get_machine(struct api_routes *r, const char *id, const struct api_request *req,
			struct api_response *resp)
{
	(void)id;
	(void)req;
	reply(resp, 200, vm_config_machine_to_json(&r->cfg));
}

static void get_vm_config(struct api_routes *r, const char *id, const struct api_request *req,
			  struct api_response *resp)
{
	(void)id;
	(void)req;
	reply(resp, 200, vm_config_to_json(&r->cfg));
}

static void get_balloon(struct api_routes *r, const char *id, const struct api_request *req,
			struct api_response *resp)
{
	(void)id;
	(void)req;
	if (!r->cfg.balloon.set)
		fault(resp, NO_BALLOON);
	else
		reply(resp, 200, vm_config_balloon_to_json(&r->cfg));
}

static void get_balloon_stats(struct api_routes *r, const char *id, const struct api_request *req,
			      struct api_response *resp)
{
	char err[ERRLEN] = "", *json = NULL;

	(void)id;
	(void)req;
	if (!r->cfg.balloon.set) {
		fault(resp, NO_BALLOON);
		return;
	}
	/* Firecracker's BalloonConfigError::StatsNotFound. */
	if (!r->cfg.balloon.stats_polling_interval_s) {
		fault(resp, "Statistics for the balloon device are not enabled");
		return;
	}
	if (!r->ops->balloon_stats) {
		unsupported_op(resp, "GET /balloon/statistics");
		return;
	}
	if (r->ops->balloon_stats(r->opaque, &json, err, sizeof(err)) || !json) {
		free(json);
		fault(resp, "%s", *err ? err : "no balloon statistics");
		return;
	}
	reply(resp, 200, json);
}

/* ---- configuration bodies ---- */

static const char *section_of(const char *path)
{
	/* "drives/" -> "drives"; the others are the section's name. */
	static char const *const sections[] = { "drives", "network-interfaces" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sections); i++)
		if (!strncmp(path, sections[i], strlen(sections[i])) &&
		    path[strlen(sections[i])] == '/')
			return sections[i];
	return path;
}

/*
 * Applies the body to a copy of the configuration, lets the VMM act on
 * the copy (when it must: a running VM, a logger), and keeps the copy only
 * if both succeeded: a refused request changes nothing.
 */
typedef int (*effect_fn)(struct api_routes *r, const struct vm_config *before,
			 const struct vm_config *after, const char *id, char *err, size_t errlen);

static void apply(struct api_routes *r, const char *section, enum config_op op, const char *id,
		  const struct api_request *req, effect_fn effect, struct api_response *resp)
{
	struct vm_config next;
	char err[ERRLEN] = "";
	int ret;

	if (vm_config_clone(&next, &r->cfg)) {
		fault(resp, "out of memory");
		return;
	}
	ret = vm_config_apply_json(&next, section, req->body, req->body_len, op, id, err,
				   sizeof(err));
	if (ret) {
		vm_config_free(&next);
		config_fault(resp, ret, err);
		return;
	}
	if (effect && effect(r, &r->cfg, &next, id, err, sizeof(err))) {
		vm_config_free(&next);
		fault(resp, "%s", *err ? err : "refused");
		return;
	}
	vm_config_free(&r->cfg);
	r->cfg = next;
	reply(resp, 204, NULL);
}

static int need(bool have, const char *what, char *err, size_t errlen)
{
	if (have)
		return 0;
	snprintf(err, errlen, "%s is not supported by this build of popek", what);
	return -1;
}

/* Without a VMM-side logger, the level still applies to popek's own log
 * lines on stderr; a log file needs the VMM (util/log.c writes to stderr
 * only). */
static int configure_logger(struct api_routes *r, const struct logger_config *l, char *err,
			    size_t errlen)
{
	static const enum log_level levels[] = {
		[LOGGER_ERROR] = LOG_ERROR, [LOGGER_WARNING] = LOG_WARN, [LOGGER_INFO] = LOG_INFO,
		[LOGGER_DEBUG] = LOG_DEBUG, [LOGGER_TRACE] = LOG_DEBUG,  [LOGGER_OFF] = LOG_ERROR,
	};

	if (r->ops->configure_logger)
		return r->ops->configure_logger(r->opaque, l, err, errlen);
	if (l->log_path) {
		snprintf(err, errlen, "log_path is not supported by this build of popek: its log "
			 "goes to stderr");
		return -1;
	}
	log_set_level(levels[l->level]);
	return 0;
}

static int effect_logger(struct api_routes *r, const struct vm_config *before,
			 const struct vm_config *after, const char *id, char *err, size_t errlen)
{
	(void)before;
	(void)id;
	return configure_logger(r, &after->logger, err, errlen);
}

static int start_metrics(struct api_routes *r, const char *path, char *err, size_t errlen)
{
	int ret = metrics_start(r->metrics, path, METRICS_FLUSH_INTERVAL_S);

	if (ret == -EEXIST)
		/* Firecracker's MetricsError::AlreadyInitialized. */
		snprintf(err, errlen, "Reinitialization of metrics not allowed.");
	else if (ret)
		snprintf(err, errlen, "Cannot initialize the metrics system: %s: %s", path,
			 strerror(-ret));
	return ret;
}

static int effect_metrics(struct api_routes *r, const struct vm_config *before,
			  const struct vm_config *after, const char *id, char *err, size_t errlen)
{
	(void)before;
	(void)id;
	return start_metrics(r, after->metrics.metrics_path, err, errlen);
}

static int effect_drive(struct api_routes *r, const struct vm_config *before,
			const struct vm_config *after, const char *id, char *err, size_t errlen)
{
	(void)before;
	if (need(r->ops->update_drive != NULL, "PATCH /drives", err, errlen))
		return -1;
	return r->ops->update_drive(r->opaque, vm_config_find_drive(after, id), err, errlen);
}

static int effect_net(struct api_routes *r, const struct vm_config *before,
		      const struct vm_config *after, const char *id, char *err, size_t errlen)
{
	(void)before;
	if (need(r->ops->update_net != NULL, "PATCH /network-interfaces", err, errlen))
		return -1;
	return r->ops->update_net(r->opaque, vm_config_find_iface(after, id), err, errlen);
}

static int effect_balloon(struct api_routes *r, const struct vm_config *before,
			  const struct vm_config *after, const char *id, char *err, size_t errlen)
{
	(void)before;
	(void)id;
	if (need(r->ops->set_balloon_target != NULL, "PATCH /balloon", err, errlen))
		return -1;
	return r->ops->set_balloon_target(r->opaque, after->balloon.amount_mib, err, errlen);
}

static int effect_balloon_stats(struct api_routes *r, const struct vm_config *before,
				const struct vm_config *after, const char *id, char *err,
				size_t errlen)
{
	(void)id;
	/* The device negotiates the statistics queue when the guest driver
	 * starts: Firecracker's BalloonConfigError::InvalidStatsUpdate. */
	if (!before->balloon.stats_polling_interval_s != !after->balloon.stats_polling_interval_s) {
		snprintf(err, errlen, "Cannot enable/disable the statistics after boot.");
		return -1;
	}
	if (need(r->ops->set_balloon_stats_interval != NULL, "PATCH /balloon/statistics", err,
		 errlen))
		return -1;
	return r->ops->set_balloon_stats_interval(r->opaque,
						  after->balloon.stats_polling_interval_s, err,
						  errlen);
}

static void put_config(struct api_routes *r, const char *id, const struct api_request *req,
		       struct api_response *resp)
{
	const char *section = section_of(req->path + 1);
	effect_fn effect = NULL;

	if (!strcmp(section, "logger"))
		effect = effect_logger;
	else if (!strcmp(section, "metrics"))
		effect = effect_metrics;
	apply(r, section, CONFIG_PUT, id, req, effect, resp);
}

static void patch_config(struct api_routes *r, const char *id, const struct api_request *req,
			 struct api_response *resp)
{
	const char *section = section_of(req->path + 1);
	bool running = state(r) != VM_STATE_NOT_STARTED;
	effect_fn effect = NULL;

	if (!strcmp(section, "drives"))
		effect = effect_drive;
	else if (!strcmp(section, "network-interfaces"))
		effect = effect_net;
	else if (!strcmp(section, "balloon") && running)
		effect = effect_balloon;
	else if (!strcmp(section, "balloon/statistics") && running)
		effect = effect_balloon_stats;
	apply(r, section, CONFIG_PATCH, id, req, effect, resp);
}

/* ---- bodies of one string member: /actions, /vm ---- */

static int one_string(const struct api_request *req, const char *what, const char *field,
		      char *out, size_t outlen, char *err, size_t errlen)
{
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	int ret = CONFIG_EPARSE;

	root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return ret;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: expected a JSON object", what);
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, field)) {
			snprintf(err, errlen, "unknown field \"%.64s\" in %s, expected one of: %s",
				 key, what, field);
			goto out;
		}
	}
	v = json_object_get(root, field);
	if (!v) {
		snprintf(err, errlen, "missing field \"%s\" in %s", field, what);
		goto out;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "invalid type for \"%s\" in %s: expected a string", field,
			 what);
		goto out;
	}
	snprintf(out, outlen, "%s", json_string_value(v));
	ret = 0;
out:
	json_decref(root);
	return ret;
}

static void put_actions(struct api_routes *r, const char *id, const struct api_request *req,
			struct api_response *resp)
{
	char action[32], err[ERRLEN] = "";
	bool started = state(r) != VM_STATE_NOT_STARTED;
	int ret;

	(void)id;
	ret = one_string(req, "actions", "action_type", action, sizeof(action), err, sizeof(err));
	if (ret) {
		config_fault(resp, ret, err);
		return;
	}
	if (!strcmp(action, "InstanceStart")) {
		if (started) {
			fault(resp, NOT_AFTER_BOOT);
			return;
		}
		if (!r->ops->start) {
			unsupported_op(resp, "InstanceStart");
			return;
		}
		if (r->ops->start(r->opaque, &r->cfg, err, sizeof(err))) {
			fault(resp, "%s", *err ? err : "InstanceStart failed");
			return;
		}
		r->own_state = VM_STATE_RUNNING;
	} else if (!strcmp(action, "SendCtrlAltDel")) {
		if (!started) {
			fault(resp, NOT_BEFORE_BOOT);
			return;
		}
		if (!r->ops->ctrl_alt_del) {
			unsupported_op(resp, "SendCtrlAltDel");
			return;
		}
		if (r->ops->ctrl_alt_del(r->opaque, err, sizeof(err))) {
			fault(resp, "%s", *err ? err : "SendCtrlAltDel failed");
			return;
		}
	} else if (!strcmp(action, "FlushMetrics")) {
		ret = metrics_flush_now(r->metrics);
		if (ret) {
			fault(resp, "Failed to flush metrics: %s", strerror(-ret));
			return;
		}
	} else {
		snprintf(err, sizeof(err), "unknown variant \"%.32s\" for \"action_type\" in "
			 "actions, expected one of: FlushMetrics, InstanceStart, SendCtrlAltDel",
			 action);
		config_fault(resp, CONFIG_EPARSE, err);
		return;
	}
	reply(resp, 204, NULL);
}

static void patch_vm(struct api_routes *r, const char *id, const struct api_request *req,
		     struct api_response *resp)
{
	char want[32], err[ERRLEN] = "";
	int ret;

	(void)id;
	ret = one_string(req, "vm", "state", want, sizeof(want), err, sizeof(err));
	if (ret) {
		config_fault(resp, ret, err);
		return;
	}
	if (!strcmp(want, "Paused")) {
		if (!r->ops->pause) {
			unsupported_op(resp, "Pausing");
			return;
		}
		if (r->ops->pause(r->opaque, err, sizeof(err))) {
			fault(resp, "%s", *err ? err : "pause failed");
			return;
		}
		r->own_state = VM_STATE_PAUSED;
	} else if (!strcmp(want, "Resumed")) {
		if (!r->ops->resume) {
			unsupported_op(resp, "Resuming");
			return;
		}
		if (r->ops->resume(r->opaque, err, sizeof(err))) {
			fault(resp, "%s", *err ? err : "resume failed");
			return;
		}
		r->own_state = VM_STATE_RUNNING;
	} else {
		snprintf(err, sizeof(err), "unknown variant \"%.32s\" for \"state\" in vm, "
			 "expected one of: Paused, Resumed", want);
		config_fault(resp, CONFIG_EPARSE, err);
		return;
	}
	reply(resp, 204, NULL);
}

/* ---- the table ---- */

static const struct route routes[] = {
	{ "GET", "", ANY_TIME, get_info, "instance_info" },
	{ "GET", "version", ANY_TIME, get_version, "vmm_version" },
	{ "GET", "machine-config", ANY_TIME, get_machine, "machine_cfg" },
	{ "GET", "vm/config", ANY_TIME, get_vm_config, "vm_config" },
	{ "GET", "balloon", ANY_TIME, get_balloon, "balloon" },
	{ "GET", "balloon/statistics", POST_BOOT, get_balloon_stats, "balloon_stats" },
	{ "PUT", "actions", ANY_TIME, put_actions, "actions" },
	{ "PUT", "boot-source", PRE_BOOT, put_config, "boot_source" },
	{ "PUT", "machine-config", PRE_BOOT, put_config, "machine_cfg" },
	{ "PUT", "drives/", PRE_BOOT, put_config, "drive" },
	{ "PUT", "network-interfaces/", PRE_BOOT, put_config, "network" },
	{ "PUT", "balloon", PRE_BOOT, put_config, "balloon" },
	{ "PUT", "logger", PRE_BOOT, put_config, "logger" },
	{ "PUT", "metrics", PRE_BOOT, put_config, "metrics" },
	{ "PUT", "entropy", PRE_BOOT, put_config, "entropy" },
	{ "PATCH", "machine-config", PRE_BOOT, patch_config, "machine_cfg" },
	{ "PATCH", "drives/", POST_BOOT, patch_config, "drive" },
	{ "PATCH", "network-interfaces/", POST_BOOT, patch_config, "network" },
	{ "PATCH", "balloon", ANY_TIME, patch_config, "balloon" },
	{ "PATCH", "balloon/statistics", ANY_TIME, patch_config, "balloon_stats" },
	{ "PATCH", "vm", POST_BOOT, patch_vm, "vm" },
};

/* Firecracker endpoints popek does not implement: refused by name rather
 * than as unknown paths, so a client sees what is missing. A trailing '/'
 * covers the paths below. */
static const char *const unsupported[] = {
	"snapshot/", "vsock", "mmds", "mmds/", "cpu-config", "hotplug/", "serial", "pmem/",
	"balloon/hinting/", "memory/", "vfio/", "vhost-user-devices/",
};

static bool is_unsupported(const char *path)
{
	size_t i, n;

	for (i = 0; i < ARRAY_SIZE(unsupported); i++) {
		n = strlen(unsupported[i]);
		if (!strcmp(path, unsupported[i]))
			return true;
		/* "snapshot/" covers "snapshot" and everything below it. */
		if (unsupported[i][n - 1] == '/' && !strncmp(path, unsupported[i], n - 1) &&
		    (!path[n - 1] || path[n - 1] == '/'))
			return true;
	}
	return false;
}

/* path (no leading '/') against a route: "drives/" takes one {id}. */
static bool path_matches(const char *pattern, const char *path, const char **id)
{
	size_t n = strlen(pattern);

	*id = NULL;
	if (n && pattern[n - 1] == '/') {
		if (strncmp(path, pattern, n - 1))
			return false;
		if (!path[n - 1]) {
			*id = "";           /* "/drives": the ID is empty */
			return true;
		}
		if (path[n - 1] != '/' || strchr(path + n, '/'))
			return false;
		*id = path + n;
		return true;
	}
	return !strcmp(pattern, path);
}

static void dispatch(struct api_routes *r, const struct api_request *req, const char *path,
		     struct api_response *resp)
{
	bool started;
	const char *id;
	size_t i;

	/* Firecracker's checks come in this order (parsed_request.rs). */
	if (!strcmp(req->method, "GET") && req->body) {
		fault(resp, "GET request cannot have a body.");
		return;
	}
	if (!strcmp(req->method, "PUT") && !req->body) {
		fault(resp, "Empty PUT request.");
		return;
	}
	if (!strcmp(req->method, "PATCH") && !req->body) {
		fault(resp, "Empty PATCH request.");
		return;
	}

	for (i = 0; i < ARRAY_SIZE(routes); i++)
		if (!strcmp(routes[i].method, req->method) &&
		    path_matches(routes[i].path, path, &id))
			break;
	if (i == ARRAY_SIZE(routes)) {
		if (is_unsupported(path)) {
			fault(resp, "popek does not support /%.200s yet", path);
			return;
		}
		fault(resp, "Invalid request method and/or path: %.16s %.200s.", req->method,
			     path);
		return;
	}
	metrics_inc(r->counts[i]);
	if (id) {
		char err[ERRLEN];

		if (vm_config_check_id(id, err, sizeof(err))) {
			fault(resp, "%s", err);
			goto out;
		}
	}
	started = state(r) != VM_STATE_NOT_STARTED;
	if (routes[i].phase == PRE_BOOT && started)
		fault(resp, NOT_AFTER_BOOT);
	else if (routes[i].phase == POST_BOOT && !started)
		fault(resp, NOT_BEFORE_BOOT);
	else
		routes[i].fn(r, id, req, resp);
out:
	if (resp->status >= 400)
		metrics_inc(r->fails[i]);
}

void api_routes_handle(void *opaque, const struct api_request *req, struct api_response *resp)
{
	struct api_routes *r = opaque;
	char path[256];
	size_t n;

	resp->status = 500;
	resp->body = NULL;
	/* "/drives/x/" is "/drives/x", as Firecracker's split_terminator
	 * reads it. */
	snprintf(path, sizeof(path), "%s", req->path[0] == '/' ? req->path + 1 : req->path);
	n = strlen(path);
	if (n && path[n - 1] == '/')
		path[n - 1] = '\0';
	if (strlen(req->path) >= sizeof(path)) {
		fault(resp, "Invalid request method and/or path: the path is too long.");
	} else {
		struct api_request canon = *req;
		char full[sizeof(path) + 1];

		snprintf(full, sizeof(full), "/%s", path);
		canon.path = full;
		pthread_mutex_lock(&r->lock);
		dispatch(r, &canon, path, resp);
		pthread_mutex_unlock(&r->lock);
	}
	metrics_inc(r->requests);
	if (resp->status >= 400) {
		metrics_inc(r->errors);
		pr_debug("api: %s %s: %u %s", req->method, req->path, resp->status,
			 resp->body ? resp->body : "");
	}
	if (resp->status != 204 && !resp->body)
		reply(resp, 500, api_fault_json("out of memory"));
}

static void counters(struct api_routes *r)
{
	char group[32], name[64];
	size_t i;

	r->requests = metrics_counter(r->metrics, "api_server", "requests");
	r->errors = metrics_counter(r->metrics, "api_server", "errors");
	for (i = 0; i < ARRAY_SIZE(routes); i++) {
		char method[8];
		size_t j;

		for (j = 0; routes[i].method[j] && j < sizeof(method) - 1; j++)
			method[j] = (char)(routes[i].method[j] | 0x20);
		method[j] = '\0';
		/* Firecracker's group names: get_api_requests,
		 * put_api_requests, patch_api_requests. */
		snprintf(group, sizeof(group), "%s_api_requests", method);
		snprintf(name, sizeof(name), "%s_count", routes[i].metric);
		r->counts[i] = metrics_counter(r->metrics, group, name);
		snprintf(name, sizeof(name), "%s_fails", routes[i].metric);
		r->fails[i] = metrics_counter(r->metrics, group, name);
	}
}

struct api_routes *api_routes_create(const struct api_ops *ops, void *opaque,
				     struct metrics *metrics, const struct vm_config *initial,
				     const char *instance_id, char *err, size_t errlen)
{
	struct api_routes *r = calloc(1, sizeof(*r));

	if (!r)
		goto nomem;
	pthread_mutex_init(&r->lock, NULL);
	r->ops = ops;
	r->opaque = opaque;
	r->own_state = VM_STATE_NOT_STARTED;
	r->instance_id = strdup(instance_id ? instance_id : "anonymous-instance");
	r->counts = calloc(ARRAY_SIZE(routes), sizeof(*r->counts));
	r->fails = calloc(ARRAY_SIZE(routes), sizeof(*r->fails));
	r->metrics = metrics;
	if (!metrics) {
		r->metrics = metrics_create();
		r->own_metrics = true;
	}
	if (!r->instance_id || !r->counts || !r->fails || !r->metrics)
		goto nomem;
	if (initial) {
		if (vm_config_clone(&r->cfg, initial))
			goto nomem;
	} else {
		vm_config_init(&r->cfg);
	}
	counters(r);
	if (r->cfg.metrics.set && start_metrics(r, r->cfg.metrics.metrics_path, err, errlen))
		goto fail;
	if (r->cfg.logger.set && configure_logger(r, &r->cfg.logger, err, errlen))
		goto fail;
	return r;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	api_routes_destroy(r);
	return NULL;
}

void api_routes_destroy(struct api_routes *r)
{
	if (!r)
		return;
	if (r->own_metrics)
		metrics_destroy(r->metrics);
	vm_config_free(&r->cfg);
	free(r->counts);
	free(r->fails);
	free(r->instance_id);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct metrics *api_routes_metrics(struct api_routes *r)
{
	return r->metrics;
}
