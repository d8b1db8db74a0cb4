#include "vmm/control.h"

#include <errno.h>
#include <stddef.h>
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
#include "devices/i8042.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "api/metrics.h"
#include "vmm/builder.h"
#include "vmm/vm.h"
#include "vmm/vm_metrics.h"

/* A configuration's rate_limiter as the devices take it: an absent
 * limiter or bucket limits nothing. */
static struct rate_limit_params limit_params(const struct rate_limiter_config *c)
{
	struct rate_limit_params p = { 0 };

	if (c->set && c->bandwidth.set)
		p.bandwidth = (struct token_bucket_params){ c->bandwidth.size,
							    c->bandwidth.one_time_burst,
							    c->bandwidth.refill_time };
	if (c->set && c->ops.set)
		p.ops = (struct token_bucket_params){ c->ops.size, c->ops.one_time_burst,
						      c->ops.refill_time };
	return p;
}

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
		s->limit = limit_params(&d->rate_limiter);
		out->ndisks++;
	}
	out->nnets = 0;
	if (cfg->nifaces > OPTIONS_MAX_NETS) {
		snprintf(err, errlen, "at most %d network interfaces", OPTIONS_MAX_NETS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nifaces; i++) {
		const struct net_config *n = &cfg->ifaces[i];
		char spec[64];

		/* Through the CLI parser: one set of checks and the same
		 * stable default MAC as --net. */
		snprintf(spec, sizeof(spec), "tap=%s", n->host_dev_name);
		if (net_spec_parse(spec, &out->nets[i], err, errlen))
			return -EINVAL;
		if (n->has_guest_mac) {
			memcpy(out->nets[i].mac, n->guest_mac, 6);
			out->nets[i].mac_given = true;
		}
		out->nets[i].rx_limit = limit_params(&n->rx_rate_limiter);
		out->nets[i].tx_limit = limit_params(&n->tx_rate_limiter);
		out->nnets++;
	}
	out->rng_limit = limit_params(&cfg->entropy.rate_limiter);
	out->balloon = cfg->balloon.set;
	out->balloon_target = (uint64_t)cfg->balloon.amount_mib << 20;
	out->balloon_stats_interval = cfg->balloon.stats_polling_interval_s;
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
	struct vmm_handles running;    /* while a VM runs; zeroed otherwise */
	/* The VMM's counters for popek-api's metrics lines, and the ids of
	 * the running boot's drives and interfaces that name their groups. */
	struct metrics *registry;
	struct vm_metrics *counters;
	struct vm_device_names names;
	char drive_ids[OPTIONS_MAX_DISKS][VM_CONFIG_MAX_ID + 1];
	char iface_ids[OPTIONS_MAX_NETS][VM_CONFIG_MAX_ID + 1];
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
static void hook_running(void *opaque, const struct vmm_handles *h)
{
	struct control *c = opaque;

	pthread_mutex_lock(&c->lock);
	c->running = *h;
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
	vm_metrics_boot_ended(c->counters, &c->running, &c->names);
	memset(&c->running, 0, sizeof(c->running));
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

/* api_rpc_options.refresh_metrics: popek-api is about to write a line. */
static void refresh_metrics(void *opaque)
{
	struct control *c = opaque;

	pthread_mutex_lock(&c->lock);
	if (c->running.vm)
		vm_metrics_update(c->counters, &c->running, &c->names);
	pthread_mutex_unlock(&c->lock);
}

/* Runs fn on the balloon of the running VM, under the lock that keeps
 * the VM from being torn down meanwhile. */
static int with_balloon(struct control *c, char *err, size_t errlen,
			int (*fn)(struct virtio_balloon *b, void *arg, char *err, size_t errlen),
			void *arg)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	if (!c->running.balloon) {
		snprintf(err, errlen, "Invalid request method and/or path: the balloon device is not configured.");
		ret = -ENODEV;
	} else {
		ret = fn(c->running.balloon, arg, err, errlen);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int set_target(struct virtio_balloon *b, void *arg, char *err, size_t errlen)
{
	int ret = virtio_balloon_set_target(b, (uint64_t)*(uint32_t *)arg << 20);

	if (ret)
		snprintf(err, errlen, "amount_mib %u is more than the guest's memory",
			 *(uint32_t *)arg);
	return ret;
}

static int op_set_balloon_target(void *opaque, uint32_t amount_mib, char *err, size_t errlen)
{
	return with_balloon(opaque, err, errlen, set_target, &amount_mib);
}

static int set_interval(struct virtio_balloon *b, void *arg, char *err, size_t errlen)
{
	int ret = virtio_balloon_set_stats_interval(b, *(uint32_t *)arg);

	if (ret)
		snprintf(err, errlen, "cannot change the statistics interval: %s", strerror(-ret));
	return ret;
}

static int op_set_balloon_stats_interval(void *opaque, uint32_t interval_s, char *err,
					 size_t errlen)
{
	return with_balloon(opaque, err, errlen, set_interval, &interval_s);
}

/* Firecracker's BalloonStats object (swagger: BalloonStats). */
static int get_stats(struct virtio_balloon *b, void *arg, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned tag;
		size_t offset;
	} fields[] = {
#define F(n, t, m) { n, t, offsetof(struct balloon_stats, m) }
		F("swap_in", VIRTIO_BALLOON_S_SWAP_IN, swap_in),
		F("swap_out", VIRTIO_BALLOON_S_SWAP_OUT, swap_out),
		F("major_faults", VIRTIO_BALLOON_S_MAJFLT, major_faults),
		F("minor_faults", VIRTIO_BALLOON_S_MINFLT, minor_faults),
		F("free_memory", VIRTIO_BALLOON_S_MEMFREE, free_memory),
		F("total_memory", VIRTIO_BALLOON_S_MEMTOT, total_memory),
		F("available_memory", VIRTIO_BALLOON_S_AVAIL, available_memory),
		F("disk_caches", VIRTIO_BALLOON_S_CACHES, disk_caches),
		F("hugetlb_allocations", VIRTIO_BALLOON_S_HTLB_PGALLOC, hugetlb_allocations),
		F("hugetlb_failures", VIRTIO_BALLOON_S_HTLB_PGFAIL, hugetlb_failures),
#undef F
	};
	struct balloon_stats st;
	uint64_t target = virtio_balloon_target(b), actual = virtio_balloon_actual(b);
	char *out, *p;
	size_t left = 2048;

	if (virtio_balloon_stats(b, &st))
		memset(&st, 0, sizeof(st));   /* no report yet: only the sizes */
	out = p = malloc(left);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int n = snprintf(p, left, "{\"target_pages\":%llu,\"actual_pages\":%llu,"
			 "\"target_mib\":%llu,\"actual_mib\":%llu",
			 (unsigned long long)(target >> 12), (unsigned long long)(actual >> 12),
			 (unsigned long long)(target >> 20), (unsigned long long)(actual >> 20));
	p += n;
	left -= (size_t)n;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!(st.present & (1u << fields[i].tag)))
			continue;
		n = snprintf(p, left, ",\"%s\":%llu", fields[i].name,
			     (unsigned long long)*(const uint64_t *)((const char *)&st + fields[i].offset));
		p += n;
		left -= (size_t)n;
	}
	snprintf(p, left, "}");
	*(char **)arg = out;
	return 0;
}

static int op_balloon_stats(void *opaque, char **json_out, char *err, size_t errlen)
{
	return with_balloon(opaque, err, errlen, get_stats, json_out);
}

static int op_pause_resume(struct control *c, bool pause, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	if (!c->running.vm) {
		snprintf(err, errlen, "The microVM is not running.");
		ret = -EINVAL;
	} else {
		ret = pause ? vm_pause(c->running.vm, err, errlen) : vm_resume(c->running.vm, err, errlen);
		if (!ret)
			c->state = pause ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int op_pause(void *opaque, char *err, size_t errlen)
{
	return op_pause_resume(opaque, true, err, errlen);
}

static int op_resume(void *opaque, char *err, size_t errlen)
{
	return op_pause_resume(opaque, false, err, errlen);
}

static int op_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	struct control *c = opaque;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = c->running.kbc ? i8042_send_ctrl_alt_del(c->running.kbc) : -EINVAL;
	pthread_mutex_unlock(&c->lock);
	if (ret == -EAGAIN)
		snprintf(err, errlen, "the guest has disabled its keyboard");
	else if (ret == -ENOSPC)
		snprintf(err, errlen, "the guest's keyboard buffer is full");
	else if (ret)
		snprintf(err, errlen, "The microVM is not running.");
	return ret;
}

/* PATCH /drives/{id} after start: d is the drive's configuration with
 * the patch applied. Its rate limiter goes to the running virtio-blk
 * device (unchanged limits keep their buckets' state); its backing file
 * is re-opened (a new file, or the same one resized on the host), and the
 * guest told its new capacity. */
static int op_update_drive(void *opaque, const struct drive_config *d, char *err, size_t errlen)
{
	struct control *c = opaque;
	int ret = -ENODEV;

	if (!d || !d->path_on_host)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->running.nblk && i < OPTIONS_MAX_DISKS; i++) {
		if (c->names.drive[i] && !strcmp(c->names.drive[i], d->id)) {
			struct rate_limit_params limit = limit_params(&d->rate_limiter);

			virtio_blk_set_rate_limit(c->running.blk[i], &limit);
			ret = virtio_blk_replace_disk(c->running.blk[i], d->path_on_host, err,
						      errlen);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (ret == -ENODEV)
		snprintf(err, errlen, "Invalid block device ID: %s", d->id);
	else if (!ret)
		pr_info("drive %s: now %s", d->id, d->path_on_host);
	return ret;
}

/* PATCH /network-interfaces/{id} after start: n is the interface's
 * configuration with the patch applied (Firecracker's body holds only
 * rate limiters); they go to the running virtio-net device. */
static int op_update_net(void *opaque, const struct net_config *n, char *err, size_t errlen)
{
	struct control *c = opaque;
	int ret = -ENODEV;

	if (n) {
		pthread_mutex_lock(&c->lock);
		for (unsigned i = 0; i < c->running.nnet && i < OPTIONS_MAX_NETS; i++) {
			if (c->names.iface[i] && !strcmp(c->names.iface[i], n->id)) {
				struct rate_limit_params rx = limit_params(&n->rx_rate_limiter);
				struct rate_limit_params tx = limit_params(&n->tx_rate_limiter);

				virtio_net_set_rate_limits(c->running.net[i], &rx, &tx);
				ret = 0;
				break;
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (ret)
		snprintf(err, errlen, "Invalid network interface ID");
	return ret;
}

/* PUT /logger, and a configuration file's "logger" section. */
static int op_configure_logger(void *opaque, const struct logger_config *l, char *err,
			       size_t errlen)
{
	static const enum log_level levels[] = {
		[LOGGER_ERROR] = LOG_ERROR, [LOGGER_WARNING] = LOG_WARN, [LOGGER_INFO] = LOG_INFO,
		[LOGGER_DEBUG] = LOG_DEBUG, [LOGGER_TRACE] = LOG_DEBUG,  [LOGGER_OFF] = LOG_ERROR,
	};
	enum log_level level = (unsigned)l->level <= LOGGER_OFF ? levels[l->level] : LOG_WARN;

	(void)opaque;
	if (l->log_path) {
		struct log_file_config f = {
			.path = l->log_path, .off = l->level == LOGGER_OFF,
			.show_level = l->show_level, .show_origin = l->show_log_origin,
			.module = l->module,
		};
		int ret = log_set_file(&f, err, errlen);

		if (ret)
			return ret;
	}
	log_set_level(level);
	return 0;
}

static const struct api_ops control_ops = {
	.configure_logger = op_configure_logger,
	.update_drive = op_update_drive,
	.update_net = op_update_net,
	.start = op_start,
	.state = op_state,
	.pause = op_pause,
	.resume = op_resume,
	.ctrl_alt_del = op_ctrl_alt_del,
	.set_balloon_target = op_set_balloon_target,
	.set_balloon_stats_interval = op_set_balloon_stats_interval,
	.balloon_stats = op_balloon_stats,
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
	pthread_mutex_lock(&c->lock);
	memset(&c->names, 0, sizeof(c->names));
	for (unsigned i = 0; i < cfg->ndrives && i < OPTIONS_MAX_DISKS; i++) {
		snprintf(c->drive_ids[i], sizeof(c->drive_ids[i]), "%s", cfg->drives[i].id);
		c->names.drive[i] = c->drive_ids[i];
	}
	for (unsigned i = 0; i < cfg->nifaces && i < OPTIONS_MAX_NETS; i++) {
		snprintf(c->iface_ids[i], sizeof(c->iface_ids[i]), "%s", cfg->ifaces[i].id);
		c->names.iface[i] = c->iface_ids[i];
	}
	pthread_mutex_unlock(&c->lock);
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

/* Without an API socket (no popek-api), popek itself applies the
 * configuration file's "logger" section and writes its "metrics" lines:
 * the VMM's counters, every METRICS_FLUSH_INTERVAL_S and at exit. */
static int file_sections_without_api(struct control *c, const struct vm_config *cfg, char *err,
				     size_t errlen)
{
	int ret;

	if (cfg->logger.set && op_configure_logger(c, &cfg->logger, err, errlen))
		return -1;
	if (!cfg->metrics.set || !cfg->metrics.metrics_path)
		return 0;
	c->registry = metrics_create();
	c->counters = vm_metrics_create(c->registry);
	if (!c->registry || !c->counters) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	metrics_set_refresh(c->registry, refresh_metrics, c);
	ret = metrics_start(c->registry, cfg->metrics.metrics_path, METRICS_FLUSH_INTERVAL_S);
	if (ret) {
		/* Firecracker's wording, as PUT /metrics. */
		snprintf(err, errlen, "Cannot initialize the metrics system: %s: %s",
			 cfg->metrics.metrics_path, strerror(-ret));
		return -1;
	}
	return 0;
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
		struct api_rpc_options ro = {
			.initial = have_file ? &file_cfg : NULL,
			.refresh_metrics = refresh_metrics,
		};

		c.registry = metrics_create();
		c.counters = vm_metrics_create(c.registry);
		if (!c.registry || !c.counters) {
			pr_err("out of memory");
			status = POPEK_EXIT_VMM_ERROR;
			goto out;
		}
		ro.metrics = c.registry;

		/* popek-api and its threads must not take the host's stop
		 * signals: this thread reads them. */
		api = api_rpc_start_opts(o->api_socket, &ro, &control_ops, &c, err, sizeof(err));
		if (!api || api_rpc_wait_ready(api, err, sizeof(err))) {
			pr_err("--api-sock %s: %s", o->api_socket, err);
			goto out;
		}
	}
	if (have_file && !api && file_sections_without_api(&c, &file_cfg, err, sizeof(err))) {
		pr_err("--config-file %s: %s", o->config_file, err);
		goto out;
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
	/* popek-api asks for the counters once more as it stops. */
	if (api)
		api_rpc_stop(api);
	/* The registry first: its last line may refresh from the counters. */
	if (c.registry)
		metrics_destroy(c.registry);
	vm_metrics_destroy(c.counters);
	vm_config_free(&file_cfg);
	if (c.start_fd >= 0)
		close(c.start_fd);
	return status;
}
