/*
 * popek-api: the Firecracker-compatible API server of one popek VM, in a
 * process of its own (docs/api.md, "popek-api"). popek starts it when it
 * is given an API socket:
 *
 *   popek-api --rpc-fd 3 --api-sock PATH
 *
 * fd 3 is a socketpair to popek, which sends "hello" (its controls, the
 * configuration so far, the instance id, its log level) and then answers
 * the requests that implement struct api_ops (rpc_client.c). popek-api
 * listens on PATH with server.c and routes.c, tells popek "ready" (or
 * "failed" with the reason), and serves until SIGTERM/SIGINT/SIGHUP or
 * until the socketpair closes (popek exited).
 *
 * It holds no guest memory and no KVM descriptor, runs with
 * PR_SET_NO_NEW_PRIVS, no descriptor but its own, and no capabilities
 * once it listens. Exit status: 0 after a signal or popek's exit, 1 when
 * popek went away during start-up, 2 on a start-up error (reported to
 * popek, which prints it).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/rpc_client.h"
#include "api/rpc_wire.h"
#include "api/server.h"
#include "util/log.h"
#include "vmm/config.h"

#define ERRLEN 512
/* While a metrics path is configured, popek's counters are fetched this
 * often, so that the periodic lines are at most this late for them
 * (FlushMetrics and the last line fetch them first). */
#define METRICS_POLL_MS 1000

struct app {
	struct api_rpc_client *client;
	struct api_routes *routes;
	struct metrics *metrics;

	pthread_mutex_t lock;       /* the poller */
	pthread_cond_t wake;
	pthread_t poller;
	bool polling;               /* a metrics path is configured: the poller runs */
	bool stopping;
};

static void fetch_metrics(struct app *a)
{
	char err[ERRLEN];

	if (api_rpc_client_fetch_metrics(a->client, a->metrics, -1, err, sizeof(err)))
		pr_debug("api: popek's counters: %s", err);
}

static void *poller(void *arg)
{
	struct app *a = arg;
	struct timespec next;

	pthread_mutex_lock(&a->lock);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!a->stopping) {
		next.tv_nsec += METRICS_POLL_MS * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (!a->stopping && pthread_cond_timedwait(&a->wake, &a->lock, &next) != ETIMEDOUT)
			;
		if (a->stopping)
			break;
		pthread_mutex_unlock(&a->lock);
		if (api_rpc_client_alive(a->client))
			fetch_metrics(a);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void start_poller(struct app *a)
{
	pthread_mutex_lock(&a->lock);
	if (!a->polling && !a->stopping)
		a->polling = !pthread_create(&a->poller, NULL, poller, a);
	pthread_mutex_unlock(&a->lock);
}

static bool metrics_configured(struct app *a)
{
	bool on;

	pthread_mutex_lock(&a->lock);
	on = a->polling;
	pthread_mutex_unlock(&a->lock);
	return on;
}

/* path is "/name" or "/name/" (the routes read both alike). */
static bool is_path(const char *path, const char *name)
{
	size_t n = strlen(name);

	if (path[0] != '/' || strncmp(path + 1, name, n))
		return false;
	return !path[n + 1] || (path[n + 1] == '/' && !path[n + 2]);
}

/* The routes, plus popek's counters in the metrics lines. */
static void handle(void *opaque, const struct api_request *req, struct api_response *resp)
{
	struct app *a = opaque;
	bool put = !strcmp(req->method, "PUT");

	/* FlushMetrics writes a line now: with popek's counters of now. */
	if (put && is_path(req->path, "actions") && metrics_configured(a))
		fetch_metrics(a);
	api_routes_handle(a->routes, req, resp);
	if (put && resp->status == 204 && is_path(req->path, "metrics"))
		start_poller(a);
}

/* Nothing popek-api does needs a capability once it listens (its socket
 * file is made, metrics files are opened with popek's uid's own rights).
 * Without them, a popek-api that runs as root cannot ptrace popek or open
 * /proc/<popek>/mem or fd/: the kernel wants the tracer's capabilities to
 * include the target's. Errors are ignored: a non-root popek has none. */
static void drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int cap;

	memset(data, 0, sizeof(data));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data))
		pr_debug("api: capset: %s", strerror(errno));
}

/* Only 0, 1, 2 and the socketpair stay open. */
static void close_other_fds(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range((unsigned)keep + 1, ~0U, 0);
}

/* Start-up errors go to popek, which prints them as its own one line; to
 * stderr only when popek cannot be told. */
static int startup_failed(struct api_rpc_client *c, const char *err)
{
	if (api_rpc_client_failed(c, err))
		fprintf(stderr, "popek-api: error: %s\n", err);
	return 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: popek-api --rpc-fd FD --api-sock PATH\n"
		"popek-api is started by popek (popek run --api-sock PATH); it is not run by "
		"hand.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rpc-fd", required_argument, NULL, 'f' },
		{ "api-sock", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct app app = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *sock = NULL;
	struct api_server *srv = NULL;
	struct signalfd_siginfo si;
	char err[ERRLEN], *end;
	int c, fd = API_RPC_FD, sigfd, status = 0;
	struct pollfd pfd[2];
	pthread_condattr_t ca;
	struct stat st;
	sigset_t set;
	long v;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 3 || v > 65535) {
				fprintf(stderr, "popek-api: error: --rpc-fd %s: expected a "
					"descriptor number above 2\n", optarg);
				return 2;
			}
			fd = (int)v;
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (!sock || optind < argc) {
		usage();
		return 2;
	}
	/* Nothing this process runs may gain privileges (it runs nothing:
	 * this is for the day a bug makes it try). */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (fstat(fd, &st) || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "popek-api: error: fd %d is not a socket\n", fd);
		usage();
		return 2;
	}
	close_other_fds(fd);
	fcntl(fd, F_SETFD, FD_CLOEXEC);

	/* Signals are read from sigfd by this thread only; every thread
	 * (the server's too) inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		fprintf(stderr, "popek-api: error: signalfd: %s\n", strerror(errno));
		return 2;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&app.wake, &ca);
	pthread_condattr_destroy(&ca);

	app.client = api_rpc_client_open(fd, API_RPC_HELLO_TIMEOUT_MS, err, sizeof(err));
	if (!app.client) {
		fprintf(stderr, "popek-api: error: %s\n", err);
		return 2;
	}
	log_set_level((enum log_level)api_rpc_client_log_level(app.client));
	app.metrics = metrics_create();
	if (!app.metrics) {
		status = startup_failed(app.client, "out of memory");
		goto out;
	}
	app.routes = api_routes_create(api_rpc_client_ops(app.client), app.client, app.metrics,
				       api_rpc_client_config(app.client),
				       api_rpc_client_id(app.client), err, sizeof(err));
	if (!app.routes) {
		status = startup_failed(app.client, err);
		goto out;
	}
	if (api_rpc_client_config(app.client) && api_rpc_client_config(app.client)->metrics.set)
		start_poller(&app);
	srv = api_server_start(sock, handle, &app, err, sizeof(err));
	if (!srv) {
		status = startup_failed(app.client, err);
		goto out;
	}
	drop_capabilities();
	if (api_rpc_client_ready(app.client, err, sizeof(err))) {
		status = 1;
		goto out;
	}

	pfd[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
	/* Hang-up only: replies are read by the threads that asked. */
	pfd[1] = (struct pollfd){ .fd = api_rpc_client_fd(app.client), .events = POLLRDHUP };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("api: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				pr_debug("api: signal %u: stopping", si.ssi_signo);
			break;
		}
		if (pfd[1].revents) {
			pr_debug("api: popek closed the connection: stopping");
			break;
		}
	}
out:
	pthread_mutex_lock(&app.lock);
	app.stopping = true;
	pthread_cond_broadcast(&app.wake);
	pthread_mutex_unlock(&app.lock);
	if (app.polling)
		pthread_join(app.poller, NULL);
	/* Connections first: requests in progress finish (popek answers
	 * until it has seen popek-api exit). */
	api_server_stop(srv);
	/* The last line (metrics_destroy) carries popek's last counts. */
	if (app.polling && api_rpc_client_alive(app.client) &&
	    api_rpc_client_fetch_metrics(app.client, app.metrics, API_RPC_LAST_METRICS_TIMEOUT_MS,
					 err, sizeof(err)))
		pr_debug("api: popek's last counters: %s", err);
	api_routes_destroy(app.routes);
	metrics_destroy(app.metrics);
	api_rpc_client_close(app.client);
	close(sigfd);
	pthread_cond_destroy(&app.wake);
	return status;
}
