/* The API server with fake VM controls, for tests/system/test_api.py: no
 * KVM, no VM. Each call the routes make is reported on stdout, one line
 * each ("start {config json}", "pause", "resume", ...), and the controls
 * keep a state that GET / reports. Serves until SIGTERM or SIGINT.
 *
 *   api-stub --api-sock PATH [--config-file FILE] [--id ID] [--fail-start]
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/server.h"
#include "vmm/config.h"

struct stub {
	enum vm_state state;
	bool fail_start;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int stub_start(void *opaque, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct stub *s = opaque;
	char *json;

	if (s->fail_start) {
		snprintf(err, errlen, "stub: start refused on purpose");
		return -1;
	}
	json = vm_config_to_json(cfg);
	say("start %s", json ? json : "null");
	free(json);
	s->state = VM_STATE_RUNNING;
	return 0;
}

static int stub_pause(void *opaque, char *err, size_t errlen)
{
	struct stub *s = opaque;

	(void)err;
	(void)errlen;
	say("pause");
	s->state = VM_STATE_PAUSED;
	return 0;
}

static int stub_resume(void *opaque, char *err, size_t errlen)
{
	struct stub *s = opaque;

	(void)err;
	(void)errlen;
	say("resume");
	s->state = VM_STATE_RUNNING;
	return 0;
}

static int stub_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("ctrl_alt_del");
	return 0;
}

static int stub_balloon_target(void *opaque, uint32_t mib, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("balloon_target %u", mib);
	return 0;
}

static int stub_balloon_interval(void *opaque, uint32_t s, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("balloon_interval %u", s);
	return 0;
}

static int stub_balloon_stats(void *opaque, char **json, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	*json = strdup("{\"target_pages\":0,\"actual_pages\":0,\"target_mib\":0,\"actual_mib\":0}");
	return *json ? 0 : -1;
}

static int stub_update_drive(void *opaque, const struct drive_config *d, char *err,
			     size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("update_drive %s %s", d->id, d->path_on_host);
	return 0;
}

static int stub_update_net(void *opaque, const struct net_config *n, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("update_net %s", n->id);
	return 0;
}

static int stub_logger(void *opaque, const struct logger_config *l, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("logger %s %s", l->log_path ? l->log_path : "-", vm_config_level_name(l->level));
	return 0;
}

static enum vm_state stub_state(void *opaque)
{
	return ((struct stub *)opaque)->state;
}

static const struct api_ops stub_ops = {
	.start = stub_start,
	.pause = stub_pause,
	.resume = stub_resume,
	.ctrl_alt_del = stub_ctrl_alt_del,
	.set_balloon_target = stub_balloon_target,
	.set_balloon_stats_interval = stub_balloon_interval,
	.balloon_stats = stub_balloon_stats,
	.update_drive = stub_update_drive,
	.update_net = stub_update_net,
	.configure_logger = stub_logger,
	.state = stub_state,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "config-file", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'i' },
		{ "fail-start", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *config = NULL, *id = NULL;
	struct stub stub = { .state = VM_STATE_NOT_STARTED };
	struct api_routes *routes;
	struct api_server *srv;
	struct vm_config cfg;
	struct metrics *m;
	char err[512];
	sigset_t set;
	int c, sig;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'c': config = optarg; break;
		case 'i': id = optarg; break;
		case 'f': stub.fail_start = true; break;
		default: return 2;
		}
	}
	if (!sock) {
		fprintf(stderr, "usage: api-stub --api-sock PATH [--config-file FILE] [--id ID]\n");
		return 2;
	}
	/* Signals are taken by sigwait below, never by the server's threads,
	 * which inherit this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	vm_config_init(&cfg);
	if (config && vm_config_load_file(&cfg, config, err, sizeof(err))) {
		fprintf(stderr, "api-stub: error: %s\n", err);
		return 2;
	}
	m = metrics_create();
	routes = api_routes_create(&stub_ops, &stub, m, &cfg, id, err, sizeof(err));
	vm_config_free(&cfg);
	if (!routes) {
		fprintf(stderr, "api-stub: error: %s\n", err);
		return 2;
	}
	srv = api_server_start(sock, api_routes_handle, routes, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "api-stub: error: %s\n", err);
		api_routes_destroy(routes);
		metrics_destroy(m);
		return 2;
	}
	say("ready");
	sigwait(&set, &sig);
	api_server_stop(srv);
	api_routes_destroy(routes);
	metrics_destroy(m);
	say("stopped");
	return 0;
}
