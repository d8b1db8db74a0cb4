#include "api/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/metrics.h"
#include "api/rpc_wire.h"
#include "util/log.h"
#include "vmm/config.h"

#define ERRLEN 512

extern char **environ;

struct api_rpc_server {
	int fd;
	pid_t pid;                  /* 0: attached to a socket, no process */
	const struct api_ops *ops;
	void *opaque;
	struct metrics *metrics;
	void (*refresh_metrics)(void *opaque);
	enum vm_state own_state;    /* when ops->state is NULL (only the thread uses it) */

	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;       /* what follows */
	pthread_cond_t cond;
	bool ready;                 /* popek-api sent "ready" */
	bool failed;                /* popek-api sent "failed": reason in error */
	bool gone;                  /* the connection ended */
	bool stopping;              /* api_rpc_stop runs: the end is expected */
	bool reaped;
	int wstatus;
	char error[ERRLEN];
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

/* ---- replies ---- */

static json_t *ok_reply(void)
{
	return json_pack("{s:b}", "ok", 1);
}

/* status: what the API answers, kept in the protocol for later use (the
 * routes answer every refusal of the VMM with 400 today). */
static json_t *err_reply(const char *msg)
{
	return json_pack("{s:b,s:s,s:i}", "ok", 0, "error", msg, "status", 400);
}

static json_t *op_reply(int ret, const char *err)
{
	return ret ? err_reply(err) : ok_reply();
}

static const char *const state_names[] = { "Not started", "Running", "Paused" };

/* ---- arguments ---- */

/* A uint32_t member; false when absent or out of range (malformed). */
static bool get_u32(const json_t *req, const char *key, uint32_t *out)
{
	json_t *v = json_object_get(req, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return false;
	*out = (uint32_t)json_integer_value(v);
	return true;
}

/* One section of a VM configuration sent as JSON (the shape of its API
 * body and configuration file entry) applied to a fresh configuration by
 * config.c, which checks every field: 0, or a config.c error in err. */
static int parse_section(struct vm_config *cfg, const char *section, const json_t *body,
			 const char *id, char *err, size_t errlen)
{
	char *s = json_dumps(body, JSON_COMPACT);
	int ret;

	vm_config_init(cfg);
	if (!s)
		return fail(err, errlen, "out of memory");
	ret = vm_config_apply_json(cfg, section, s, strlen(s), CONFIG_PUT, id, err, errlen);
	free(s);
	return ret;
}

/* ---- the VMM's counters, for popek-api's metrics lines ---- */

/* {"counters": {group: {name: value}}, "gauges": {...}}: absolute values,
 * which popek-api stores in its own registry so that its lines show them
 * per period like its own counters. */
static json_t *metrics_reply(struct metrics *m)
{
	json_t *reply = ok_reply(), *counters = json_object(), *gauges = json_object();
	json_t *snap = NULL, *g, *v;
	const char *group, *name;
	char *line;

	if (!reply || !counters || !gauges)
		goto out;
	line = m ? metrics_snapshot(m) : NULL;
	if (line) {
		snap = json_loads(line, 0, NULL);
		free(line);
	}
	json_object_foreach(snap, group, g) {
		if (!json_is_object(g))
			continue;       /* utc_timestamp_ms */
		json_object_foreach(g, name, v) {
			/* Existing counters: the lookup finds them. */
			struct metrics_counter *c = metrics_counter(m, group, name);
			json_t *dst, *sub;

			if (!c)
				continue;
			dst = c->gauge ? gauges : counters;
			sub = json_object_get(dst, group);
			if (!sub) {
				sub = json_object();
				json_object_set_new(dst, group, sub);
			}
			json_object_set_new(sub, name,
					    json_integer((json_int_t)(metrics_read(c) & INT64_MAX)));
		}
	}
	json_decref(snap);
	json_object_set(reply, "counters", counters);
	json_object_set(reply, "gauges", gauges);
out:
	json_decref(counters);
	json_decref(gauges);
	return reply;
}

/* ---- requests ---- */

static void set_flag(struct api_rpc_server *s, bool *flag, const char *error)
{
	char *c;

	pthread_mutex_lock(&s->lock);
	*flag = true;
	if (error) {
		/* It becomes popek's error line: one line, printable. */
		snprintf(s->error, sizeof(s->error), "%s", error);
		for (c = s->error; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = ' ';
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static enum log_level log_level_of(enum logger_level l)
{
	static const enum log_level levels[] = {
		[LOGGER_ERROR] = LOG_ERROR, [LOGGER_WARNING] = LOG_WARN, [LOGGER_INFO] = LOG_INFO,
		[LOGGER_DEBUG] = LOG_DEBUG, [LOGGER_TRACE] = LOG_DEBUG,  [LOGGER_OFF] = LOG_ERROR,
	};

	return l <= LOGGER_OFF ? levels[l] : LOG_INFO;
}

#define NOT_SUPPORTED(what) err_reply(what " is not supported by this build of popek")
/* After the arguments are checked (malformed first), before the control. */
#define CHECK_PHASE()                                                   \
	do {                                                            \
		json_t *refusal_ = phase_refusal(op, vm_state(s));      \
		if (refusal_)                                           \
			return refusal_;                                \
	} while (0)

static enum vm_state vm_state(struct api_rpc_server *s)
{
	return s->ops->state ? s->ops->state(s->opaque) : s->own_state;
}

/* The routes check when each control may be used; so does this side, for
 * a popek-api that would not (the VMM's ops may count on it). NULL when
 * op may be used in state st. */
static json_t *phase_refusal(const char *op, enum vm_state st)
{
	static const char *const post_boot[] = {
		"pause", "resume", "ctrl_alt_del", "set_balloon_target",
		"set_balloon_stats_interval", "balloon_stats", "update_drive", "update_net",
	};
	size_t i;

	if (!strcmp(op, "start") && st != VM_STATE_NOT_STARTED)
		return err_reply("The requested operation is not supported after starting the "
				 "microVM.");
	for (i = 0; i < sizeof(post_boot) / sizeof(post_boot[0]); i++)
		if (!strcmp(op, post_boot[i]) && st == VM_STATE_NOT_STARTED)
			return err_reply("The requested operation is not supported before "
					 "starting the microVM.");
	return NULL;
}

/*
 * One request: the reply, or NULL when the request is malformed (why says
 * how) and the connection must end. Refusals by the VMM or by config.c are
 * replies with "ok": false.
 */
static json_t *handle(struct api_rpc_server *s, const json_t *req, char *why, size_t whylen)
{
	const struct api_ops *ops = s->ops;
	const char *op = rpc_str(req, "op");
	char err[ERRLEN] = "";
	struct vm_config cfg;
	json_t *reply, *body;
	uint32_t n;
	int ret;

	if (!op) {
		fail(why, whylen, "a request without an \"op\"");
		return NULL;
	}
	if (!strcmp(op, "ready")) {
		set_flag(s, &s->ready, NULL);
		return ok_reply();
	}
	if (!strcmp(op, "failed")) {
		const char *e = rpc_str(req, "error");

		if (!e)
			goto malformed;
		set_flag(s, &s->failed, e);
		return ok_reply();
	}
	if (!strcmp(op, "state")) {
		enum vm_state st = vm_state(s);

		return json_pack("{s:b,s:s}", "ok", 1, "state",
				 st <= VM_STATE_PAUSED ? state_names[st] : "Running");
	}
	if (!strcmp(op, "metrics")) {
		if (s->refresh_metrics)
			s->refresh_metrics(s->opaque);
		return metrics_reply(s->metrics);
	}
	if (!strcmp(op, "start")) {
		char *json;

		body = json_object_get(req, "config");
		if (!json_is_object(body))
			goto malformed;
		if (!ops->start)
			return NOT_SUPPORTED("InstanceStart");
		CHECK_PHASE();
		json = json_dumps(body, JSON_COMPACT);
		if (!json)
			return err_reply("out of memory");
		vm_config_init(&cfg);
		ret = vm_config_load_json(&cfg, json, strlen(json), err, sizeof(err));
		free(json);
		if (!ret) {
			ret = ops->start(s->opaque, &cfg, err, sizeof(err));
			if (!ret)
				s->own_state = VM_STATE_RUNNING;
		}
		vm_config_free(&cfg);
		return op_reply(ret, err);
	}
	if (!strcmp(op, "pause")) {
		if (!ops->pause)
			return NOT_SUPPORTED("Pausing");
		CHECK_PHASE();
		ret = ops->pause(s->opaque, err, sizeof(err));
		if (!ret)
			s->own_state = VM_STATE_PAUSED;
		return op_reply(ret, err);
	}
	if (!strcmp(op, "resume")) {
		if (!ops->resume)
			return NOT_SUPPORTED("Resuming");
		CHECK_PHASE();
		ret = ops->resume(s->opaque, err, sizeof(err));
		if (!ret)
			s->own_state = VM_STATE_RUNNING;
		return op_reply(ret, err);
	}
	if (!strcmp(op, "ctrl_alt_del")) {
		if (!ops->ctrl_alt_del)
			return NOT_SUPPORTED("SendCtrlAltDel");
		CHECK_PHASE();
		return op_reply(ops->ctrl_alt_del(s->opaque, err, sizeof(err)), err);
	}
	if (!strcmp(op, "set_balloon_target")) {
		if (!get_u32(req, "amount_mib", &n))
			goto malformed;
		if (!ops->set_balloon_target)
			return NOT_SUPPORTED("PATCH /balloon");
		CHECK_PHASE();
		return op_reply(ops->set_balloon_target(s->opaque, n, err, sizeof(err)), err);
	}
	if (!strcmp(op, "set_balloon_stats_interval")) {
		if (!get_u32(req, "interval_s", &n))
			goto malformed;
		if (!ops->set_balloon_stats_interval)
			return NOT_SUPPORTED("PATCH /balloon/statistics");
		CHECK_PHASE();
		return op_reply(ops->set_balloon_stats_interval(s->opaque, n, err, sizeof(err)),
				err);
	}
	if (!strcmp(op, "balloon_stats")) {
		char *json = NULL;
		json_t *stats;

		if (!ops->balloon_stats)
			return NOT_SUPPORTED("GET /balloon/statistics");
		CHECK_PHASE();
		ret = ops->balloon_stats(s->opaque, &json, err, sizeof(err));
		if (ret || !json) {
			free(json);
			return err_reply(ret ? err : "no balloon statistics");
		}
		stats = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
		free(json);
		if (!json_is_object(stats)) {
			json_decref(stats);
			return err_reply("the VMM's balloon statistics are not a JSON object");
		}
		reply = ok_reply();
		json_object_set_new(reply, "stats", stats);
		return reply;
	}
	if (!strcmp(op, "update_drive") || !strcmp(op, "update_net")) {
		bool drive = op[7] == 'd';
		const char *id;

		body = json_object_get(req, drive ? "drive" : "iface");
		id = rpc_str(body, drive ? "drive_id" : "iface_id");
		if (!id)
			goto malformed;
		if (drive ? !ops->update_drive : !ops->update_net)
			return drive ? NOT_SUPPORTED("PATCH /drives") :
				       NOT_SUPPORTED("PATCH /network-interfaces");
		CHECK_PHASE();
		ret = parse_section(&cfg, drive ? "drives" : "network-interfaces", body, id, err,
				    sizeof(err));
		if (!ret)
			ret = drive ? ops->update_drive(s->opaque, vm_config_find_drive(&cfg, id), err,
						       sizeof(err)) :
				      ops->update_net(s->opaque, vm_config_find_iface(&cfg, id), err,
						      sizeof(err));
		vm_config_free(&cfg);
		return op_reply(ret, err);
	}
	if (!strcmp(op, "configure_logger")) {
		body = json_object_get(req, "logger");
		if (!json_is_object(body))
			goto malformed;
		ret = parse_section(&cfg, "logger", body, NULL, err, sizeof(err));
		if (!ret && ops->configure_logger) {
			ret = ops->configure_logger(s->opaque, &cfg.logger, err, sizeof(err));
		} else if (!ret && cfg.logger.log_path) {
			/* routes.c's answer when the VMM has no logger. */
			ret = fail(err, sizeof(err), "log_path is not supported by this build of "
				   "popek: its log goes to stderr");
		} else if (!ret) {
			log_set_level(log_level_of(cfg.logger.level));
		}
		vm_config_free(&cfg);
		return op_reply(ret, err);
	}
	fail(why, whylen, "unknown op \"%.32s\"", op);
	return NULL;
malformed:
	fail(why, whylen, "malformed \"%.32s\" request", op);
	return NULL;
}

static void *serve(void *arg)
{
	struct api_rpc_server *s = arg;
	char why[ERRLEN];
	json_t *req, *reply;
	int ret;

	for (;;) {
		ret = rpc_recv(s->fd, -1, &req, why, sizeof(why));
		if (ret <= 0)
			break;
		reply = handle(s, req, why, sizeof(why));
		json_decref(req);
		if (!reply) {
			ret = -1;
			break;
		}
		ret = rpc_send(s->fd, reply, why, sizeof(why));
		json_decref(reply);
		if (ret)
			break;
	}
	pthread_mutex_lock(&s->lock);
	if (ret < 0 && !s->stopping)
		pr_err("api: dropping the connection to popek-api: %s", why);
	else if (!s->stopping && s->ready)
		pr_warn("api: popek-api exited: the API is no longer served");
	s->gone = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/* popek-api sees the end too, and exits. */
	shutdown(s->fd, SHUT_RDWR);
	return NULL;
}

/* ---- set-up ---- */

static json_t *hello(const struct api_rpc_options *opts, const struct api_ops *ops)
{
	const struct {
		const char *name;
		bool have;
	} names[] = {
#define OP(x) { #x, ops->x != NULL }
		OP(start), OP(pause), OP(resume), OP(ctrl_alt_del), OP(set_balloon_target),
		OP(set_balloon_stats_interval), OP(balloon_stats), OP(update_drive),
		OP(update_net),
#undef OP
	};
	json_t *msg, *list = json_array(), *cfg = NULL;
	size_t i;

	/* Which controls the VMM has: popek-api refuses the others itself,
	 * as routes.c does for a NULL op. configure_logger and state are
	 * always answered here (see handle). */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].have)
			json_array_append_new(list, json_string(names[i].name));
	if (opts->initial) {
		char *s = vm_config_to_json(opts->initial);

		cfg = s ? json_loads(s, 0, NULL) : NULL;
		free(s);
		if (!cfg) {
			json_decref(list);
			return NULL;
		}
	}
	msg = json_pack("{s:s,s:i,s:o,s:o,s:o,s:i}", "op", "hello", "version", API_RPC_VERSION,
			"ops", list, "config", cfg ? cfg : json_null(), "id",
			opts->instance_id ? json_string(opts->instance_id) : json_null(),
			"log_level", (int)log_get_level());
	return msg;
}

static struct api_rpc_server *attach(int fd, pid_t pid, const struct api_rpc_options *opts,
				     const struct api_ops *ops, void *opaque, char *err,
				     size_t errlen)
{
	struct api_rpc_server *s;
	sigset_t all, old;
	json_t *msg;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = fd;
	s->pid = pid;
	s->ops = ops;
	s->opaque = opaque;
	s->metrics = opts->metrics;
	s->refresh_metrics = opts->refresh_metrics;
	s->own_state = VM_STATE_NOT_STARTED;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);

	msg = hello(opts, ops);
	if (!msg) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	/* A popek-api that died already: the thread sees the connection
	 * closed, and api_rpc_wait_ready says how it exited. */
	if (rpc_send(fd, msg, err, errlen))
		pr_debug("api: hello: %s", err);
	json_decref(msg);
	/* The thread takes no process signals: popek's own threads handle
	 * those (SIGINT, the vCPU kick). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&s->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		fail(err, errlen, "cannot create the API thread: %s", strerror(ret));
		goto out;
	}
	s->thread_started = true;
	return s;
out:
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

struct api_rpc_server *api_rpc_attach(int fd, const struct api_rpc_options *opts,
				      const struct api_ops *ops, void *opaque, char *err,
				      size_t errlen)
{
	static const struct api_rpc_options none;

	return attach(fd, 0, opts ? opts : &none, ops, opaque, err, errlen);
}

/* popek-api's path: given, $POPEK_API_BINARY, or beside popek. */
static int find_binary(const char *given, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *env = getenv("POPEK_API_BINARY");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (given || (env && *env)) {
		snprintf(out, outlen, "%s", given ? given : env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return fail(err, errlen, "cannot find popek-api: /proc/self/exe: %s",
				    strerror(errno));
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		if ((size_t)snprintf(out, outlen, "%s/popek-api", self) >= outlen)
			return fail(err, errlen, "cannot find popek-api: path too long");
	}
	if (access(out, X_OK))
		return fail(err, errlen, "cannot run the API server %s: %s%s", out, strerror(errno),
			    given || (env && *env) ? "" : " (it is built and installed beside popek; "
			    "POPEK_API_BINARY names another)");
	return 0;
}

static int spawn(const char *path, const char *socket_path, int child_fd, pid_t *pid,
		 char *err, size_t errlen)
{
	static const int reset[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2 };
	char fdarg[16];
	char *argv[] = { (char *)path, "--rpc-fd", fdarg, "--api-sock", (char *)socket_path, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t set;
	size_t i;
	int ret;

	snprintf(fdarg, sizeof(fdarg), "%d", API_RPC_FD);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* child_fd is never API_RPC_FD (see api_rpc_start_opts), so dup2
	 * gives a descriptor without FD_CLOEXEC. */
	posix_spawn_file_actions_adddup2(&fa, child_fd, API_RPC_FD);
	/* popek's stdin and stdout are the guest's console. */
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	/* A session of its own: the terminal's signals go to popek, which
	 * stops popek-api in order. */
	sigemptyset(&set);
	posix_spawnattr_setsigmask(&attr, &set);
	for (i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		sigaddset(&set, reset[i]);
	posix_spawnattr_setsigdefault(&attr, &set);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawn(pid, path, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		return fail(err, errlen, "cannot run the API server %s: %s", path, strerror(ret));
	return 0;
}

struct api_rpc_server *api_rpc_start_opts(const char *socket_path,
					  const struct api_rpc_options *opts,
					  const struct api_ops *ops, void *opaque, char *err,
					  size_t errlen)
{
	static const struct api_rpc_options none;
	struct api_rpc_server *s;
	char path[PATH_MAX];
	int sv[2], fd;
	pid_t pid;

	if (!opts)
		opts = &none;
	if (find_binary(opts->binary, path, sizeof(path), err, errlen))
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		fail(err, errlen, "socketpair: %s", strerror(errno));
		return NULL;
	}
	if (sv[1] == API_RPC_FD) {
		fd = fcntl(sv[1], F_DUPFD_CLOEXEC, API_RPC_FD + 1);
		if (fd < 0) {
			fail(err, errlen, "fcntl: %s", strerror(errno));
			close(sv[0]);
			close(sv[1]);
			return NULL;
		}
		close(sv[1]);
		sv[1] = fd;
	}
	if (spawn(path, socket_path, sv[1], &pid, err, errlen)) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	close(sv[1]);
	s = attach(sv[0], pid, opts, ops, opaque, err, errlen);
	if (!s) {
		close(sv[0]);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return NULL;
	}
	pr_debug("api: started %s (pid %d) for %s", path, (int)pid, socket_path);
	return s;
}

struct api_rpc_server *api_rpc_start(const char *socket_path, const char *popek_api_path,
				     const struct api_ops *ops, void *opaque, char *err,
				     size_t errlen)
{
	struct api_rpc_options opts = { .binary = popek_api_path };

	return api_rpc_start_opts(socket_path, &opts, ops, opaque, err, errlen);
}

pid_t api_rpc_pid(const struct api_rpc_server *s)
{
	return s->pid;
}

/* Waits up to timeout_ms for the child: true once reaped (or none). */
static bool reap(struct api_rpc_server *s, int timeout_ms)
{
	static const struct timespec tick = { 0, 10 * 1000 * 1000 };
	int waited = 0;
	pid_t r;

	while (!s->reaped && s->pid) {
		r = waitpid(s->pid, &s->wstatus, WNOHANG);
		if (r == s->pid || (r < 0 && errno == ECHILD)) {
			s->reaped = true;   /* ECHILD: SIGCHLD ignored; nothing to wait for */
			if (r < 0)
				s->wstatus = 0;
			break;
		}
		if (r < 0 && errno != EINTR)
			break;
		if (waited >= timeout_ms)
			break;
		nanosleep(&tick, NULL);
		waited += 10;
	}
	return s->reaped || !s->pid;
}

int api_rpc_wait_ready(struct api_rpc_server *s, char *err, size_t errlen)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += API_RPC_READY_TIMEOUT_S;
	pthread_mutex_lock(&s->lock);
	while (!s->ready && !s->failed && !s->gone && !ret)
		ret = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
	if (s->failed) {
		fail(err, errlen, "%s", s->error);
		ret = -1;
	} else if (s->ready) {
		ret = 0;
	} else if (s->gone) {
		/* It exits right after closing the socket. */
		if (reap(s, 2000) && s->pid && WIFSIGNALED(s->wstatus))
			fail(err, errlen, "the API server was killed by signal %d before it "
			     "served", WTERMSIG(s->wstatus));
		else if (s->reaped && WIFEXITED(s->wstatus))
			fail(err, errlen, "the API server exited with status %d before it served",
			     WEXITSTATUS(s->wstatus));
		else
			fail(err, errlen, "the API server closed its connection before it served");
		ret = -1;
	} else {
		fail(err, errlen, "the API server did not start serving within %d s",
		     API_RPC_READY_TIMEOUT_S);
		ret = -1;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void api_rpc_stop(struct api_rpc_server *s)
{
	bool failed;

	if (!s)
		return;
	if (s->thread_started && pthread_equal(pthread_self(), s->thread)) {
		pr_err("api: api_rpc_stop called from an api_ops call: ignored");
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	failed = s->failed;
	pthread_mutex_unlock(&s->lock);
	/* reaped and wstatus belong to the caller's thread (wait_ready, stop). */
	if (s->pid && !s->reaped) {
		/* The thread goes on serving meanwhile: popek-api's last
		 * metrics line asks for the VMM's counters. */
		kill(s->pid, SIGTERM);
		if (reap(s, API_RPC_STOP_TIMEOUT_MS)) {
			/* It exits 0 on SIGTERM: anything else is worth a line
			 * (a crash, a sanitizer's report), unless it said why
			 * already ("failed"). */
			if (failed)
				;
			else if (WIFSIGNALED(s->wstatus))
				pr_warn("api: the API server was killed by signal %d",
					WTERMSIG(s->wstatus));
			else if (WIFEXITED(s->wstatus) && WEXITSTATUS(s->wstatus))
				pr_warn("api: the API server exited with status %d",
					WEXITSTATUS(s->wstatus));
		} else {
			pr_warn("api: the API server (pid %d) did not exit on SIGTERM: killing it",
				(int)s->pid);
			kill(s->pid, SIGKILL);
			while (waitpid(s->pid, &s->wstatus, 0) < 0 && errno == EINTR)
				;
			s->reaped = true;
		}
	}
	shutdown(s->fd, SHUT_RDWR);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	close(s->fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
