/* popek's side of the API (src/api/rpc.c) with fake VM controls
 * (stub-ops.c), for tests/system/test_api.py: it starts the real popek-api
 * on the socket, as popek does, and answers its requests; no KVM, no VM.
 * Like popek it is linked without libmicrohttpd. Prints "ready <pid of
 * popek-api>" once popek-api serves; on SIGTERM, SIGINT or SIGHUP it stops
 * popek-api (api_rpc_stop) and prints "stopped".
 *
 *   rpc-stub --api-sock PATH [--config-file FILE] [--id ID] [--fail-start]
 *
 * popek-api is $POPEK_API_BINARY, else the one beside this program. The
 * fake VMM counts in a metrics registry of its own ("stub_vmm":
 * "state_calls", and the gauge "answer", 42) that popek-api reports.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/metrics.h"
#include "api/rpc.h"
#include "stub-ops.h"
#include "vmm/config.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "api-socket", required_argument, NULL, 's' },
		{ "config-file", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'i' },
		{ "fail-start", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *config = NULL;
	struct stub stub = { .state = VM_STATE_NOT_STARTED };
	struct api_rpc_options opts = { 0 };
	struct api_rpc_server *srv;
	struct vm_config cfg;
	struct metrics *m;
	char err[512];
	sigset_t set;
	int c, sig;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'c': config = optarg; break;
		case 'i': opts.instance_id = optarg; break;
		case 'f': stub.fail_start = true; break;
		default: return 2;
		}
	}
	if (!sock) {
		fprintf(stderr, "usage: rpc-stub --api-sock PATH [--config-file FILE] [--id ID]\n");
		return 2;
	}
	/* As popek: signals are taken by sigwait below, the API thread
	 * blocks them all. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	vm_config_init(&cfg);
	if (config && vm_config_load_file(&cfg, config, err, sizeof(err))) {
		fprintf(stderr, "rpc-stub: error: %s\n", err);
		vm_config_free(&cfg);
		return 2;
	}
	m = metrics_create();
	if (!m)
		return 2;
	stub.state_calls = metrics_counter(m, "stub_vmm", "state_calls");
	metrics_set(metrics_gauge(m, "stub_vmm", "answer"), 42);
	opts.initial = config ? &cfg : NULL;
	opts.metrics = m;
	srv = api_rpc_start_opts(sock, &opts, &stub_ops, &stub, err, sizeof(err));
	vm_config_free(&cfg);       /* sent to popek-api in "hello" */
	if (!srv) {
		fprintf(stderr, "rpc-stub: error: %s\n", err);
		metrics_destroy(m);
		return 2;
	}
	if (api_rpc_wait_ready(srv, err, sizeof(err))) {
		fprintf(stderr, "rpc-stub: error: %s\n", err);
		api_rpc_stop(srv);
		metrics_destroy(m);
		return 2;
	}
	say("ready %d", (int)api_rpc_pid(srv));
	sigwait(&set, &sig);
	api_rpc_stop(srv);
	metrics_destroy(m);
	say("stopped");
	return 0;
}
