/* The API server with fake VM controls (stub-ops.c), for
 * tests/system/test_api.py: no KVM, no VM, and no popek-api: the routes
 * call the controls in this process. Serves until SIGTERM or SIGINT.
 *
 *   api-stub --api-sock PATH [--config-file FILE] [--id ID] [--fail-start]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/server.h"
#include "stub-ops.h"
#include "vmm/config.h"

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
