#include "vmm/control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api/rpc.h"
#include "api/routes.h"
#include "util/log.h"
#include "vmm/builder.h"
#include "vmm/vm.h"

int run_options_from_config(const struct vm_config *cfg, const struct run_options *base,
			    struct run_options *out, char *err, size_t errlen)
{
	*out = *base;
	out->kernel = NULL;
	out->initrd = NULL;
	out->cmdline = NULL;
	out->ndisks = 0;
	if (!cfg->boot_source.set || !cfg->boot_source.kernel_image_path) {
		/* Firecracker's wording for InstanceStart without a kernel. */
		snprintf(err, errlen, "Cannot start microvm without kernel configuration.");
		return -EINVAL;
	}
	out->kernel = cfg->boot_source.kernel_image_path;
	out->initrd = cfg->boot_source.initrd_path;
	out->cmdline = cfg->boot_source.boot_args;
	out->cpus = cfg->machine.vcpu_count;
	out->memory = cfg->machine.mem_size_mib << 20;
	if (cfg->ndrives > OPTIONS_MAX_DISKS) {
		snprintf(err, errlen, "at most %d drives", OPTIONS_MAX_DISKS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->ndrives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		struct disk_spec *s = &out->disks[i];

		memset(s, 0, sizeof(*s));
		if (!d->path_on_host || strlen(d->path_on_host) >= sizeof(s->path)) {
			snprintf(err, errlen, "drive %s: no usable path_on_host", d->id);
			return -EINVAL;
		}
		strcpy(s->path, d->path_on_host);
		s->readonly = d->is_read_only;
		/* Firecracker's "Unsafe" cache skips flushes; popek always
		 * honours them, which is the safe reading of both modes. */
		s->direct = false;
		/* The drive id doubles as the serial the guest sees (GET_ID),
		 * so /dev/disk/by-id names it, as Firecracker does. */
		snprintf(s->serial, sizeof(s->serial), "%.*s", (int)(sizeof(s->serial) - 1), d->id);
		out->ndisks++;
	}
	if (cfg->nifaces) {
		snprintf(err, errlen, "network interfaces are not supported by this build of popek yet");
		return -EINVAL;
	}
	return 0;
}

/* ---- the start handshake between the RPC thread and the main thread ---- */

struct control {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int start_fd;                  /* eventfd: a start request is waiting */
	struct vm_config *pending;     /* the request's configuration */
	bool answered;                 /* the main thread has answered it */
	int result;
	char error[256];
	enum vm_state state;
	struct vm *vm;                 /* while running */
};

static int op_start(void *opaque, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct control *c = opaque;
	int ret;

	pthread_mutex_lock(&c->lock);
	if (c->state != VM_STATE_NOT_STARTED || c->pending) {
		pthread_mutex_unlock(&c->lock);
		snprintf(err, errlen, "The microVM is already running.");
		return -EALREADY;
	}
	c->pending = malloc(sizeof(*c->pending));
	if (!c->pending || vm_config_clone(c->pending, cfg)) {
		free(c->pending);
		c->pending = NULL;
		pthread_mutex_unlock(&c->lock);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->answered = false;
	if (write(c->start_fd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		pr_warn("control: eventfd: %s", strerror(errno));
	/* InstanceStart returns once the VM runs, or with why it did not. */
	while (!c->answered)
		pthread_cond_wait(&c->cond, &c->lock);
	ret = c->result;
	if (ret)
		snprintf(err, errlen, "%s", c->error);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static enum vm_state op_state(void *opaque)
{
	struct control *c = opaque;
	enum vm_state st;

	pthread_mutex_lock(&c->lock);
	st = c->state;
	pthread_mutex_unlock(&c->lock);
	return st;
}

/* Builder hooks: the VM of the current boot, and the answer to start. */
static void hook_running(void *opaque, struct vm *vm)
{
	struct control *c = opaque;

	pthread_mutex_lock(&c->lock);
	c->vm = vm;
	c->state = VM_STATE_RUNNING;
	if (!c->answered) {
		c->result = 0;
		c->answered = true;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

static void hook_stopped(void *opaque)
{
	struct control *c = opaque;

	pthread_mutex_lock(&c->lock);
	c->vm = NULL;
	pthread_mutex_unlock(&c->lock);
}

static void hook_failed(void *opaque, const char *why)
{
	struct control *c = opaque;

	pthread_mutex_lock(&c->lock);
	if (!c->answered) {
		c->result = -EINVAL;
		snprintf(c->error, sizeof(c->error), "%s", why);
		c->answered = true;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

static const struct api_ops control_ops = {
	.start = op_start,
	.state = op_state,
};

/* Boots cfg; a start that fails before the VM runs answers the API and
 * leaves the machine waiting for another. Returns -1 in that case, else
 * the exit status. */
static int boot_config(struct control *c, const struct vm_config *cfg,
		       const struct run_options *base)
{
	struct vmm_hooks hooks = {
		.running = hook_running, .stopped = hook_stopped, .failed = hook_failed,
		.opaque = c,
	};
	struct run_options o;
	char err[256];
	int status;

	if (run_options_from_config(cfg, base, &o, err, sizeof(err))) {
		hook_failed(c, err);
		return -1;
	}
	status = vmm_run_hooked(&o, &hooks);
	pthread_mutex_lock(&c->lock);
	bool ran = c->state != VM_STATE_NOT_STARTED;
	pthread_mutex_unlock(&c->lock);
	return ran ? status : -1;
}

/* Waits for InstanceStart (or a host signal); returns the request. */
static struct vm_config *wait_for_start(struct control *c, int *signo)
{
	sigset_t set;
	struct vm_config *cfg = NULL;
	int sigfd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	*signo = 0;
	while (!cfg && !*signo) {
		struct pollfd fds[2] = {
			{ .fd = c->start_fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		uint64_t n;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				*signo = (int)si.ssi_signo;
		}
		if ((fds[0].revents & POLLIN) && read(c->start_fd, &n, sizeof(n)) == sizeof(n)) {
			pthread_mutex_lock(&c->lock);
			cfg = c->pending;
			pthread_mutex_unlock(&c->lock);
		}
	}
	if (sigfd >= 0)
		close(sigfd);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return cfg;
}

int vmm_serve(const struct run_options *o)
{
	struct control c = { .state = VM_STATE_NOT_STARTED, .start_fd = -1 };
	struct api_rpc_server *api = NULL;
	struct vm_config file_cfg;
	bool have_file = false;
	char err[512];
	int status = POPEK_EXIT_USAGE;

	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	vm_config_init(&file_cfg);
	c.start_fd = eventfd(0, EFD_CLOEXEC);
	if (c.start_fd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		goto out;
	}
	if (o->config_file) {
		if (vm_config_load_file(&file_cfg, o->config_file, err, sizeof(err))) {
			pr_err("--config-file %s: %s", o->config_file, err);
			goto out;
		}
		have_file = true;
	}
	if (o->api_socket) {
		struct api_rpc_options ro = { .initial = have_file ? &file_cfg : NULL };

		/* popek-api and its threads must not take the host's stop
		 * signals: this thread reads them. */
		api = api_rpc_start_opts(o->api_socket, &ro, &control_ops, &c, err, sizeof(err));
		if (!api || api_rpc_wait_ready(api, err, sizeof(err))) {
			pr_err("--api-sock %s: %s", o->api_socket, err);
			goto out;
		}
	}
	if (have_file) {
		/* Firecracker boots at once when given a configuration file. */
		status = boot_config(&c, &file_cfg, o);
		if (status < 0) {
			pr_err("--config-file %s: %s", o->config_file, c.error);
			status = POPEK_EXIT_USAGE;
		}
		goto out;
	}
	for (;;) {
		int signo;
		struct vm_config *cfg = wait_for_start(&c, &signo);

		if (!cfg) {
			pr_warn("stopping on signal %d before the VM started", signo);
			status = POPEK_EXIT_SIGNAL;
			break;
		}
		status = boot_config(&c, cfg, o);
		pthread_mutex_lock(&c.lock);
		c.pending = NULL;
		pthread_mutex_unlock(&c.lock);
		vm_config_free(cfg);
		free(cfg);
		if (status >= 0)
			break;
		pr_warn("InstanceStart failed: %s", c.error);
	}
out:
	if (api)
		api_rpc_stop(api);
	vm_config_free(&file_cfg);
	if (c.start_fd >= 0)
		close(c.start_fd);
	return status;
}
