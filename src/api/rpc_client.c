#include "api/rpc_client.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/metrics.h"
#include "api/rpc_wire.h"
#include "util/log.h"
#include "vmm/config.h"

#define ERRLEN 512
#define GONE "popek is gone: the VM cannot be controlled any more"

struct api_rpc_client {
	int fd;
	pthread_mutex_t lock;       /* one request at a time; what follows */
	bool dead;
	enum vm_state last_state;   /* answered when popek cannot be asked */

	struct api_ops ops;
	bool has_config;
	struct vm_config config;
	char *id;
	int log_level;
};

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

/* Under c->lock: no more requests; popek sees the end too. */
static void drop(struct api_rpc_client *c)
{
	c->dead = true;
	shutdown(c->fd, SHUT_RDWR);
}

/*
 * Sends req (consumed) and reads the reply: 0 with *reply (when reply is
 * not NULL; the caller's reference), or -1 with err set: popek's refusal,
 * or a broken connection (then dead for good).
 */
static int call(struct api_rpc_client *c, json_t *req, int timeout_ms, json_t **reply, char *err,
		size_t errlen)
{
	char why[ERRLEN];
	json_t *r = NULL, *ok;
	const char *msg;
	int ret;

	if (reply)
		*reply = NULL;
	if (!req)
		return fail(err, errlen, "out of memory");
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		ret = fail(err, errlen, GONE);
		goto out;
	}
	if (rpc_send(c->fd, req, why, sizeof(why))) {
		drop(c);
		ret = fail(err, errlen, GONE);
		goto out;
	}
	ret = rpc_recv(c->fd, timeout_ms, &r, why, sizeof(why));
	if (ret <= 0) {
		/* A timeout leaves a reply on its way: the stream cannot be
		 * used again either. */
		if (ret < 0)
			pr_err("api: dropping the connection to popek: %s", why);
		drop(c);
		ret = fail(err, errlen, GONE);
		goto out;
	}
	ok = json_object_get(r, "ok");
	msg = rpc_str(r, "error");
	if (!json_is_boolean(ok) || (!json_is_true(ok) && !msg)) {
		pr_err("api: dropping the connection to popek: malformed reply to \"%s\"",
		       rpc_str(req, "op"));
		drop(c);
		ret = fail(err, errlen, GONE);
		goto out;
	}
	if (!json_is_true(ok)) {
		/* popek's message, possibly empty: the routes then use their
		 * own ("InstanceStart failed"). */
		ret = fail(err, errlen, "%s", msg);
		goto out;
	}
	ret = 0;
	if (reply) {
		*reply = r;
		r = NULL;
	}
out:
	pthread_mutex_unlock(&c->lock);
	json_decref(r);
	json_decref(req);
	return ret;
}

static int simple(void *opaque, const char *op, char *err, size_t errlen)
{
	return call(opaque, json_pack("{s:s}", "op", op), -1, NULL, err, errlen);
}

/* ---- the ops ---- */

/* A configuration as the JSON object config.c reads back. */
static json_t *config_json(const struct vm_config *cfg)
{
	char *s = vm_config_to_json(cfg);
	json_t *o;

	if (!s)
		return NULL;
	o = json_loads(s, 0, NULL);
	free(s);
	return o;
}

/* One element of a section of a configuration that holds only it. */
static json_t *element_json(const struct vm_config *tmp, const char *section, bool first)
{
	json_t *all = config_json(tmp), *e;

	if (!all)
		return NULL;
	e = json_object_get(all, section);
	if (first)
		e = json_array_get(e, 0);
	json_incref(e);
	json_decref(all);
	return e;
}

static int op_start(void *opaque, const struct vm_config *cfg, char *err, size_t errlen)
{
	json_t *o = config_json(cfg);

	if (!o)
		return fail(err, errlen, "out of memory");
	return call(opaque, json_pack("{s:s,s:o}", "op", "start", "config", o), -1, NULL, err,
		    errlen);
}

static int op_pause(void *opaque, char *err, size_t errlen)
{
	return simple(opaque, "pause", err, errlen);
}

static int op_resume(void *opaque, char *err, size_t errlen)
{
	return simple(opaque, "resume", err, errlen);
}

static int op_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	return simple(opaque, "ctrl_alt_del", err, errlen);
}

static int op_balloon_target(void *opaque, uint32_t mib, char *err, size_t errlen)
{
	return call(opaque, json_pack("{s:s,s:I}", "op", "set_balloon_target", "amount_mib",
				      (json_int_t)mib), -1, NULL, err, errlen);
}

static int op_balloon_interval(void *opaque, uint32_t s, char *err, size_t errlen)
{
	return call(opaque, json_pack("{s:s,s:I}", "op", "set_balloon_stats_interval",
				      "interval_s", (json_int_t)s), -1, NULL, err, errlen);
}

static int op_balloon_stats(void *opaque, char **json_out, char *err, size_t errlen)
{
	json_t *reply, *stats;

	*json_out = NULL;
	if (call(opaque, json_pack("{s:s}", "op", "balloon_stats"), -1, &reply, err, errlen))
		return -1;
	stats = json_object_get(reply, "stats");
	if (json_is_object(stats))
		*json_out = json_dumps(stats, JSON_COMPACT);
	json_decref(reply);
	if (!*json_out)
		return fail(err, errlen, "no balloon statistics");
	return 0;
}

/* The structs are copied shallow into a configuration that is never freed:
 * it only lends its strings to vm_config_to_json. */
static int op_update_drive(void *opaque, const struct drive_config *d, char *err, size_t errlen)
{
	struct vm_config tmp;
	json_t *e;

	vm_config_init(&tmp);
	tmp.drives[0] = *d;
	tmp.ndrives = 1;
	e = element_json(&tmp, "drives", true);
	if (!e)
		return fail(err, errlen, "out of memory");
	return call(opaque, json_pack("{s:s,s:o}", "op", "update_drive", "drive", e), -1, NULL,
		    err, errlen);
}

static int op_update_net(void *opaque, const struct net_config *n, char *err, size_t errlen)
{
	struct vm_config tmp;
	json_t *e;

	vm_config_init(&tmp);
	tmp.ifaces[0] = *n;
	tmp.nifaces = 1;
	e = element_json(&tmp, "network-interfaces", true);
	if (!e)
		return fail(err, errlen, "out of memory");
	return call(opaque, json_pack("{s:s,s:o}", "op", "update_net", "iface", e), -1, NULL,
		    err, errlen);
}

static enum log_level log_level_of(enum logger_level l)
{
	static const enum log_level levels[] = {
		[LOGGER_ERROR] = LOG_ERROR, [LOGGER_WARNING] = LOG_WARN, [LOGGER_INFO] = LOG_INFO,
		[LOGGER_DEBUG] = LOG_DEBUG, [LOGGER_TRACE] = LOG_DEBUG,  [LOGGER_OFF] = LOG_ERROR,
	};

	return l <= LOGGER_OFF ? levels[l] : LOG_INFO;
}

static int op_logger(void *opaque, const struct logger_config *l, char *err, size_t errlen)
{
	struct vm_config tmp;
	json_t *e;

	vm_config_init(&tmp);
	tmp.logger = *l;
	tmp.logger.set = true;
	e = element_json(&tmp, "logger", false);
	if (!e)
		return fail(err, errlen, "out of memory");
	if (call(opaque, json_pack("{s:s,s:o}", "op", "configure_logger", "logger", e), -1, NULL,
		 err, errlen))
		return -1;
	/* popek-api's own lines (api: ...) follow the level too. */
	log_set_level(log_level_of(l->level));
	return 0;
}

static enum vm_state op_state(void *opaque)
{
	static const char *const names[] = { "Not started", "Running", "Paused" };
	struct api_rpc_client *c = opaque;
	char err[ERRLEN];
	const char *st;
	json_t *reply;
	enum vm_state ret;
	unsigned i;

	pthread_mutex_lock(&c->lock);
	ret = c->last_state;
	pthread_mutex_unlock(&c->lock);
	if (call(c, json_pack("{s:s}", "op", "state"), -1, &reply, err, sizeof(err)))
		return ret;
	st = rpc_str(reply, "state");
	for (i = 0; st && i < 3; i++)
		if (!strcmp(st, names[i]))
			ret = (enum vm_state)i;
	json_decref(reply);
	pthread_mutex_lock(&c->lock);
	c->last_state = ret;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- set-up ---- */

static const struct api_ops all_ops = {
	.start = op_start,
	.pause = op_pause,
	.resume = op_resume,
	.ctrl_alt_del = op_ctrl_alt_del,
	.set_balloon_target = op_balloon_target,
	.set_balloon_stats_interval = op_balloon_interval,
	.balloon_stats = op_balloon_stats,
	.update_drive = op_update_drive,
	.update_net = op_update_net,
	.configure_logger = op_logger,
	.state = op_state,
};

static int parse_hello(struct api_rpc_client *c, const json_t *h, char *err, size_t errlen)
{
	const char *op = rpc_str(h, "op"), *name;
	json_t *v, *ops, *cfg, *id;
	char cerr[ERRLEN];
	size_t i;
	char *s;
	int ret;

	v = json_object_get(h, "version");
	if (!op || strcmp(op, "hello") || !json_is_integer(v))
		return fail(err, errlen, "the first message from popek is not a \"hello\"");
	if (json_integer_value(v) != API_RPC_VERSION)
		return fail(err, errlen, "popek speaks version %lld of the protocol, popek-api %d: "
			    "both must come from the same build",
			    (long long)json_integer_value(v), API_RPC_VERSION);
	ops = json_object_get(h, "ops");
	cfg = json_object_get(h, "config");
	id = json_object_get(h, "id");
	v = json_object_get(h, "log_level");
	if (!json_is_array(ops) || !(json_is_null(cfg) || json_is_object(cfg)) ||
	    !(json_is_null(id) || json_is_string(id)) || !json_is_integer(v) ||
	    json_integer_value(v) < LOG_ERROR || json_integer_value(v) > LOG_DEBUG)
		return fail(err, errlen, "malformed \"hello\" from popek");
	c->log_level = (int)json_integer_value(v);
	/* The controls popek has; the others stay NULL, which the routes
	 * refuse as "not supported by this build". */
	json_array_foreach(ops, i, v) {
		name = json_string_value(v);
		if (!name)
			continue;
#define TAKE(f) if (!strcmp(name, #f)) c->ops.f = all_ops.f
		TAKE(start);
		TAKE(pause);
		TAKE(resume);
		TAKE(ctrl_alt_del);
		TAKE(set_balloon_target);
		TAKE(set_balloon_stats_interval);
		TAKE(balloon_stats);
		TAKE(update_drive);
		TAKE(update_net);
#undef TAKE
	}
	c->ops.configure_logger = all_ops.configure_logger;
	c->ops.state = all_ops.state;
	if (json_is_string(id)) {
		c->id = strdup(json_string_value(id));
		if (!c->id)
			return fail(err, errlen, "out of memory");
	}
	if (json_is_object(cfg)) {
		s = json_dumps(cfg, JSON_COMPACT);
		if (!s)
			return fail(err, errlen, "out of memory");
		vm_config_init(&c->config);
		ret = vm_config_load_json(&c->config, s, strlen(s), cerr, sizeof(cerr));
		free(s);
		if (ret)
			return fail(err, errlen, "the configuration from popek is refused: %s", cerr);
		c->has_config = true;
	}
	return 0;
}

struct api_rpc_client *api_rpc_client_open(int fd, int timeout_ms, char *err, size_t errlen)
{
	struct api_rpc_client *c = calloc(1, sizeof(*c));
	char why[ERRLEN];
	json_t *h;
	int ret;

	if (!c) {
		close(fd);
		fail(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = fd;
	c->last_state = VM_STATE_NOT_STARTED;
	pthread_mutex_init(&c->lock, NULL);
	ret = rpc_recv(fd, timeout_ms, &h, why, sizeof(why));
	if (ret <= 0) {
		fail(err, errlen, "no \"hello\" from popek: %s",
		     ret ? why : "the connection is closed");
		api_rpc_client_close(c);
		return NULL;
	}
	ret = parse_hello(c, h, err, errlen);
	json_decref(h);
	if (ret) {
		api_rpc_client_close(c);
		return NULL;
	}
	return c;
}

void api_rpc_client_close(struct api_rpc_client *c)
{
	if (!c)
		return;
	close(c->fd);
	if (c->has_config)
		vm_config_free(&c->config);
	free(c->id);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const struct api_ops *api_rpc_client_ops(struct api_rpc_client *c)
{
	return &c->ops;
}

const struct vm_config *api_rpc_client_config(struct api_rpc_client *c)
{
	return c->has_config ? &c->config : NULL;
}

const char *api_rpc_client_id(struct api_rpc_client *c)
{
	return c->id;
}

int api_rpc_client_log_level(struct api_rpc_client *c)
{
	return c->log_level;
}

int api_rpc_client_ready(struct api_rpc_client *c, char *err, size_t errlen)
{
	return call(c, json_pack("{s:s}", "op", "ready"), -1, NULL, err, errlen);
}

int api_rpc_client_failed(struct api_rpc_client *c, const char *why)
{
	char err[ERRLEN];

	return call(c, json_pack("{s:s,s:s}", "op", "failed", "error", why),
		    API_RPC_HELLO_TIMEOUT_MS, NULL, err, sizeof(err));
}

static void store(struct metrics *m, const json_t *groups, bool gauge)
{
	const char *group, *name;
	json_t *g, *v;

	json_object_foreach((json_t *)groups, group, g) {
		json_object_foreach(g, name, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				continue;
			metrics_set(gauge ? metrics_gauge(m, group, name) :
					    metrics_counter(m, group, name),
				    (uint64_t)json_integer_value(v));
		}
	}
}

int api_rpc_client_fetch_metrics(struct api_rpc_client *c, struct metrics *m, int timeout_ms,
				 char *err, size_t errlen)
{
	json_t *reply;

	if (call(c, json_pack("{s:s}", "op", "metrics"), timeout_ms, &reply, err, errlen))
		return -1;
	store(m, json_object_get(reply, "counters"), false);
	store(m, json_object_get(reply, "gauges"), true);
	json_decref(reply);
	return 0;
}

bool api_rpc_client_alive(struct api_rpc_client *c)
{
	bool alive;

	pthread_mutex_lock(&c->lock);
	alive = !c->dead;
	pthread_mutex_unlock(&c->lock);
	return alive;
}

int api_rpc_client_fd(struct api_rpc_client *c)
{
	return c->fd;
}
