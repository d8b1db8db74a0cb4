/* The messages between popek and popek-api (src/api/rpc*.c): framing and
 * its malformed forms, both sides of every op over a socketpair in one
 * process (popek's thread with fake controls, popek-api's api_ops), what
 * either side does with a malformed message from the other, and starting,
 * waiting for and stopping a popek-api process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/rpc.h"
#include "api/rpc_client.h"
#include "api/rpc_wire.h"
#include "util/log.h"
#include "vmm/config.h"

/* ---- framing ---- */

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void put_raw(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void put_frame(int fd, const char *body, uint32_t len)
{
	unsigned char hdr[4] = { len >> 24, len >> 16, len >> 8, len };

	put_raw(fd, hdr, 4);
	if (body)
		put_raw(fd, body, strlen(body));
}

/* Sends a request (consumed) on a raw connection and reads the reply. */
static json_t *ask(int fd, json_t *req)
{
	char err[256];
	json_t *reply;

	assert_int_equal(rpc_send(fd, req, err, sizeof(err)), 0);
	json_decref(req);
	if (rpc_recv(fd, 2000, &reply, err, sizeof(err)) != 1)
		fail_msg("no reply: %s", err);
	return reply;
}

static void test_frame_roundtrip(void **state)
{
	char err[256];
	json_t *in, *out;
	int sv[2], i;

	(void)state;
	pair(sv);
	in = json_pack("{s:s,s:i,s:[i,i]}", "op", "x", "n", 7, "a", 1, 2);
	for (i = 0; i < 3; i++)
		assert_int_equal(rpc_send(sv[0], in, err, sizeof(err)), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(rpc_recv(sv[1], 1000, &out, err, sizeof(err)), 1);
		assert_true(json_equal(in, out));
		json_decref(out);
	}
	/* Closed between frames: 0. */
	close(sv[0]);
	assert_int_equal(rpc_recv(sv[1], 1000, &out, err, sizeof(err)), 0);
	assert_null(out);
	json_decref(in);
	close(sv[1]);
}

struct big_send {
	int fd;
	json_t *msg;
	int ret;
};

static void *send_thread(void *arg)
{
	struct big_send *b = arg;
	char err[256];

	b->ret = rpc_send(b->fd, b->msg, err, sizeof(err));
	return NULL;
}

static void test_frame_big(void **state)
{
	size_t n = API_RPC_MAX_MSG - 64;
	struct big_send b;
	char err[256], *s;
	pthread_t t;
	json_t *out;
	int sv[2];

	(void)state;
	pair(sv);
	s = malloc(n + 1);
	memset(s, 'x', n);
	s[n] = '\0';
	/* Just under the limit: goes through (a thread sends, as it does
	 * not fit in the socket's buffer). */
	b.fd = sv[0];
	b.msg = json_pack("{s:s}", "s", s);
	pthread_create(&t, NULL, send_thread, &b);
	assert_int_equal(rpc_recv(sv[1], 5000, &out, err, sizeof(err)), 1);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, 0);
	assert_int_equal(strlen(rpc_str(out, "s")), n);
	json_decref(out);
	json_decref(b.msg);
	/* Over it: refused by the sender. */
	s = realloc(s, API_RPC_MAX_MSG + 1);
	memset(s, 'x', API_RPC_MAX_MSG);
	s[API_RPC_MAX_MSG] = '\0';
	b.msg = json_pack("{s:s}", "s", s);
	assert_int_equal(rpc_send(sv[0], b.msg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the limit"));
	json_decref(b.msg);
	free(s);
	close(sv[0]);
	close(sv[1]);
}

/* One malformed frame (then the writer's end closed): -1 and the reason. */
static void expect_bad(void (*write_it)(int fd), const char *needle)
{
	char err[256] = "";
	json_t *out = (json_t *)1;
	int sv[2];

	pair(sv);
	write_it(sv[0]);
	close(sv[0]);
	assert_int_equal(rpc_recv(sv[1], 1000, &out, err, sizeof(err)), -1);
	assert_null(out);
	if (!strstr(err, needle))
		fail_msg("\"%s\" is not in \"%s\"", needle, err);
	close(sv[1]);
}

static void w_zero(int fd) { put_frame(fd, NULL, 0); }
static void w_huge(int fd) { put_frame(fd, NULL, 0xffffffffu); }
static void w_over(int fd) { put_frame(fd, NULL, API_RPC_MAX_MSG + 1); }
static void w_short_hdr(int fd) { put_raw(fd, "\0\0", 2); }
static void w_short_body(int fd) { put_frame(fd, "{\"op\"", 20); }
static void w_not_json(int fd) { put_frame(fd, "{op: 1}", 7); }
static void w_array(int fd) { put_frame(fd, "[1,2]", 5); }
static void w_string(int fd) { put_frame(fd, "\"op\"", 4); }
static void w_dup(int fd) { put_frame(fd, "{\"op\":\"a\",\"op\":\"b\"}", 19); }
static void w_trailing(int fd) { put_frame(fd, "{} {}", 5); }

static void test_frame_malformed(void **state)
{
	char err[256];
	json_t *out;
	int sv[2];

	(void)state;
	expect_bad(w_zero, "outside 1..");
	expect_bad(w_huge, "outside 1..");
	expect_bad(w_over, "outside 1..");
	expect_bad(w_short_hdr, "closed inside a message");
	expect_bad(w_short_body, "closed inside a message");
	expect_bad(w_not_json, "invalid JSON");
	expect_bad(w_array, "not a JSON object");
	expect_bad(w_string, "invalid JSON");     /* jansson: objects and arrays only */
	expect_bad(w_dup, "invalid JSON");
	expect_bad(w_trailing, "invalid JSON");
	/* Nothing comes: the timeout. */
	pair(sv);
	assert_int_equal(rpc_recv(sv[1], 50, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "time"));
	close(sv[0]);
	close(sv[1]);
}

/* ---- a fake VMM behind popek's side ---- */

struct fake {
	enum vm_state state;
	int starts, pauses, resumes, cad, loggers;
	unsigned vcpus_at_start;
	char kernel_at_start[64];
	uint32_t balloon_target, stats_interval;
	char drive_id[VM_CONFIG_MAX_ID + 1], drive_path[64], iface_id[VM_CONFIG_MAX_ID + 1];
	char tap[VM_CONFIG_MAX_TAP_NAME + 1], log_path[64];
	enum logger_level level;
	uint64_t bw_size;
	char fail[64];              /* non-empty: every op fails with this */
};

static int fake_fail(struct fake *f, char *err, size_t errlen)
{
	if (!f->fail[0])
		return 0;
	snprintf(err, errlen, "%s", f->fail);
	return -1;
}

static int fake_start(void *o, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->starts++;
	f->vcpus_at_start = cfg->machine.vcpu_count;
	snprintf(f->kernel_at_start, sizeof(f->kernel_at_start), "%s",
		 cfg->boot_source.kernel_image_path ? cfg->boot_source.kernel_image_path : "-");
	f->state = VM_STATE_RUNNING;
	return 0;
}

static int fake_pause(void *o, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->pauses++;
	f->state = VM_STATE_PAUSED;
	return 0;
}

static int fake_resume(void *o, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->resumes++;
	f->state = VM_STATE_RUNNING;
	return 0;
}

static int fake_cad(void *o, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->cad++;
	return 0;
}

static int fake_balloon(void *o, uint32_t mib, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->balloon_target = mib;
	return 0;
}

static int fake_interval(void *o, uint32_t s, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->stats_interval = s;
	return 0;
}

static int fake_stats(void *o, char **json, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	*json = strdup("{\"target_mib\":5,\"actual_mib\":3}");
	return 0;
}

static int fake_drive(void *o, const struct drive_config *d, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	snprintf(f->drive_id, sizeof(f->drive_id), "%s", d->id);
	snprintf(f->drive_path, sizeof(f->drive_path), "%s", d->path_on_host);
	f->bw_size = d->rate_limiter.bandwidth.size;
	return 0;
}

static int fake_net(void *o, const struct net_config *n, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	snprintf(f->iface_id, sizeof(f->iface_id), "%s", n->id);
	snprintf(f->tap, sizeof(f->tap), "%s", n->host_dev_name);
	return 0;
}

static int fake_logger(void *o, const struct logger_config *l, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	f->loggers++;
	f->level = l->level;
	snprintf(f->log_path, sizeof(f->log_path), "%s", l->log_path ? l->log_path : "-");
	return 0;
}

static enum vm_state fake_state(void *o)
{
	return ((struct fake *)o)->state;
}

static const struct api_ops fake_ops = {
	.start = fake_start,
	.pause = fake_pause,
	.resume = fake_resume,
	.ctrl_alt_del = fake_cad,
	.set_balloon_target = fake_balloon,
	.set_balloon_stats_interval = fake_interval,
	.balloon_stats = fake_stats,
	.update_drive = fake_drive,
	.update_net = fake_net,
	.configure_logger = fake_logger,
	.state = fake_state,
};

/* Both sides in this process: popek's thread on sv[0], the client on
 * sv[1]. */
struct both {
	struct fake fake;
	struct metrics *vmm_metrics;
	struct api_rpc_server *srv;
	struct api_rpc_client *cli;
	const struct api_ops *ops;
};

static void connect_both(struct both *b, const struct api_ops *ops,
			 const struct api_rpc_options *opts)
{
	char err[256];
	int sv[2];

	pair(sv);
	b->srv = api_rpc_attach(sv[0], opts, ops, &b->fake, err, sizeof(err));
	assert_non_null(b->srv);
	b->cli = api_rpc_client_open(sv[1], 2000, err, sizeof(err));
	if (!b->cli)
		fail_msg("client: %s", err);
	b->ops = api_rpc_client_ops(b->cli);
}

static void disconnect_both(struct both *b)
{
	api_rpc_stop(b->srv);
	api_rpc_client_close(b->cli);
}

static void test_hello(void **state)
{
	static const char drive[] =
		"{\"drive_id\":\"rootfs\",\"path_on_host\":\"/r.ext4\",\"is_root_device\":true}";
	struct api_rpc_options opts = { .instance_id = "vm_1" };
	const struct vm_config *got;
	struct both b = { 0 };
	struct vm_config cfg;
	char err[256];

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(vm_config_apply_json(&cfg, "drives", drive, strlen(drive), CONFIG_PUT,
					      "rootfs", err, sizeof(err)), 0);
	cfg.machine.vcpu_count = 3;
	opts.initial = &cfg;
	log_set_level(LOG_INFO);
	connect_both(&b, &fake_ops, &opts);
	vm_config_free(&cfg);
	got = api_rpc_client_config(b.cli);
	assert_non_null(got);
	assert_int_equal(got->machine.vcpu_count, 3);
	assert_int_equal(got->ndrives, 1);
	assert_string_equal(got->drives[0].path_on_host, "/r.ext4");
	assert_true(got->drives[0].is_root_device);
	assert_string_equal(api_rpc_client_id(b.cli), "vm_1");
	assert_int_equal(api_rpc_client_log_level(b.cli), LOG_INFO);
	/* Every control popek has is there. */
	assert_non_null(b.ops->start);
	assert_non_null(b.ops->update_net);
	assert_non_null(b.ops->balloon_stats);
	disconnect_both(&b);
	log_set_level(LOG_WARN);

	/* Defaults: no configuration, no id. */
	connect_both(&b, &fake_ops, NULL);
	assert_null(api_rpc_client_config(b.cli));
	assert_null(api_rpc_client_id(b.cli));
	disconnect_both(&b);
}

static void test_ops(void **state)
{
	struct both b = { 0 };
	struct vm_config cfg;
	struct drive_config d;
	struct net_config n;
	struct logger_config l;
	char err[256], *json;

	(void)state;
	connect_both(&b, &fake_ops, NULL);
	assert_int_equal(b.ops->state(b.cli), VM_STATE_NOT_STARTED);

	vm_config_init(&cfg);
	cfg.machine.vcpu_count = 4;
	cfg.boot_source.set = true;
	cfg.boot_source.kernel_image_path = strdup("/images/vmlinux");
	assert_int_equal(b.ops->start(b.cli, &cfg, err, sizeof(err)), 0);
	vm_config_free(&cfg);
	assert_int_equal(b.fake.starts, 1);
	assert_int_equal(b.fake.vcpus_at_start, 4);
	assert_string_equal(b.fake.kernel_at_start, "/images/vmlinux");
	assert_int_equal(b.ops->state(b.cli), VM_STATE_RUNNING);

	assert_int_equal(b.ops->pause(b.cli, err, sizeof(err)), 0);
	assert_int_equal(b.ops->state(b.cli), VM_STATE_PAUSED);
	assert_int_equal(b.ops->resume(b.cli, err, sizeof(err)), 0);
	assert_int_equal(b.ops->ctrl_alt_del(b.cli, err, sizeof(err)), 0);
	assert_int_equal(b.fake.pauses, 1);
	assert_int_equal(b.fake.resumes, 1);
	assert_int_equal(b.fake.cad, 1);

	assert_int_equal(b.ops->set_balloon_target(b.cli, 4000000000u, err, sizeof(err)), 0);
	assert_int_equal(b.fake.balloon_target, 4000000000u);
	assert_int_equal(b.ops->set_balloon_stats_interval(b.cli, 5, err, sizeof(err)), 0);
	assert_int_equal(b.fake.stats_interval, 5);
	json = NULL;
	assert_int_equal(b.ops->balloon_stats(b.cli, &json, err, sizeof(err)), 0);
	assert_string_equal(json, "{\"target_mib\":5,\"actual_mib\":3}");
	free(json);

	memset(&d, 0, sizeof(d));
	strcpy(d.id, "rootfs");
	d.path_on_host = "/images/new.ext4";
	d.is_root_device = true;
	d.rate_limiter.set = true;
	d.rate_limiter.bandwidth = (struct token_bucket_config){ .set = true, .size = 1000,
							  .refill_time = 100 };
	assert_int_equal(b.ops->update_drive(b.cli, &d, err, sizeof(err)), 0);
	assert_string_equal(b.fake.drive_id, "rootfs");
	assert_string_equal(b.fake.drive_path, "/images/new.ext4");
	assert_int_equal(b.fake.bw_size, 1000);

	memset(&n, 0, sizeof(n));
	strcpy(n.id, "eth0");
	strcpy(n.host_dev_name, "tap7");
	assert_int_equal(b.ops->update_net(b.cli, &n, err, sizeof(err)), 0);
	assert_string_equal(b.fake.iface_id, "eth0");
	assert_string_equal(b.fake.tap, "tap7");

	memset(&l, 0, sizeof(l));
	l.set = true;
	l.level = LOGGER_DEBUG;
	l.log_path = "/tmp/popek.log";
	assert_int_equal(b.ops->configure_logger(b.cli, &l, err, sizeof(err)), 0);
	assert_int_equal(b.fake.level, LOGGER_DEBUG);
	assert_string_equal(b.fake.log_path, "/tmp/popek.log");
	/* popek-api's own log follows the level. */
	assert_int_equal(log_get_level(), LOG_DEBUG);
	log_set_level(LOG_WARN);

	/* The VMM's refusals come back word for word. */
	strcpy(b.fake.fail, "no can do: \"quoted\"\ttab");
	assert_int_equal(b.ops->pause(b.cli, err, sizeof(err)), -1);
	assert_string_equal(err, "no can do: \"quoted\"\ttab");
	assert_int_equal(b.ops->balloon_stats(b.cli, &json, err, sizeof(err)), -1);
	assert_null(json);
	assert_string_equal(err, "no can do: \"quoted\"\ttab");
	b.fake.fail[0] = '\0';

	/* popek gone: every call fails, the state is the last one known. */
	api_rpc_stop(b.srv);
	assert_int_equal(b.ops->pause(b.cli, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "popek is gone"));
	assert_false(api_rpc_client_alive(b.cli));
	assert_int_equal(b.ops->state(b.cli), VM_STATE_PAUSED);
	api_rpc_client_close(b.cli);
}

/* A configuration popek-api sends is parsed again by popek: a refused one
 * is an error reply, not a start. */
static void test_start_config_checked(void **state)
{
	struct both b = { 0 };
	json_t *reply;
	int fd;

	(void)state;
	connect_both(&b, &fake_ops, NULL);
	fd = api_rpc_client_fd(b.cli);
	/* Raw requests on the client's socket (nothing else uses it now). */
	reply = ask(fd, json_pack("{s:s,s:{s:{s:i,s:i}}}", "op", "start", "config",
				  "machine-config", "vcpu_count", 0, "mem_size_mib", 128));
	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_int_equal(json_integer_value(json_object_get(reply, "status")), 400);
	assert_non_null(strstr(rpc_str(reply, "error"), "vCPUs"));
	json_decref(reply);
	reply = ask(fd, json_pack("{s:s,s:{s:{}}}", "op", "start", "config", "bogus"));
	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_non_null(strstr(rpc_str(reply, "error"), "bogus"));
	json_decref(reply);
	assert_int_equal(b.fake.starts, 0);
	assert_int_equal(b.fake.drive_path[0], '\0');
	/* Controls out of their phase are refused here too (the routes
	 * already refuse them: this is for a popek-api that would not). */
	reply = ask(fd, json_pack("{s:s}", "op", "pause"));
	assert_string_equal(rpc_str(reply, "error"),
			    "The requested operation is not supported before starting the microVM.");
	json_decref(reply);
	reply = ask(fd, json_pack("{s:s,s:I}", "op", "set_balloon_target", "amount_mib",
				  (json_int_t)5));
	assert_true(json_is_false(json_object_get(reply, "ok")));
	json_decref(reply);
	assert_int_equal(b.fake.pauses, 0);
	assert_int_equal(b.fake.balloon_target, 0);
	reply = ask(fd, json_pack("{s:s,s:{}}", "op", "start", "config"));
	assert_true(json_is_true(json_object_get(reply, "ok")));
	json_decref(reply);
	reply = ask(fd, json_pack("{s:s,s:{}}", "op", "start", "config"));
	assert_string_equal(rpc_str(reply, "error"),
			    "The requested operation is not supported after starting the microVM.");
	json_decref(reply);
	assert_int_equal(b.fake.starts, 1);
	/* A drive update with a bad path is refused by config.c. */
	reply = ask(fd, json_pack("{s:s,s:{s:s,s:i}}", "op", "update_drive", "drive", "drive_id",
				  "x", "path_on_host", 5));
	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_non_null(strstr(rpc_str(reply, "error"), "path_on_host"));
	json_decref(reply);
	assert_int_equal(b.fake.drive_path[0], '\0');
	/* Still serving. */
	assert_int_equal(b.ops->state(b.cli), VM_STATE_RUNNING);
	disconnect_both(&b);
}

/* Controls popek lacks are NULL on popek-api's side (the routes refuse
 * them); state is tracked and the logger applies to popek's log. */
static void test_missing_ops(void **state)
{
	static const struct api_ops only_start = { .start = fake_start };
	struct both b = { 0 };
	struct logger_config l = { .set = true, .level = LOGGER_DEBUG };
	struct vm_config cfg;
	char err[256];
	json_t *reply;

	(void)state;
	connect_both(&b, &only_start, NULL);
	assert_non_null(b.ops->start);
	assert_null(b.ops->pause);
	assert_null(b.ops->resume);
	assert_null(b.ops->ctrl_alt_del);
	assert_null(b.ops->set_balloon_target);
	assert_null(b.ops->set_balloon_stats_interval);
	assert_null(b.ops->balloon_stats);
	assert_null(b.ops->update_drive);
	assert_null(b.ops->update_net);
	assert_non_null(b.ops->configure_logger);
	assert_non_null(b.ops->state);
	assert_int_equal(b.ops->state(b.cli), VM_STATE_NOT_STARTED);
	vm_config_init(&cfg);
	assert_int_equal(b.ops->start(b.cli, &cfg, err, sizeof(err)), 0);
	assert_int_equal(b.ops->state(b.cli), VM_STATE_RUNNING);

	l.log_path = "/tmp/x.log";
	assert_int_equal(b.ops->configure_logger(b.cli, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "log_path is not supported"));
	l.log_path = NULL;
	assert_int_equal(b.ops->configure_logger(b.cli, &l, err, sizeof(err)), 0);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	log_set_level(LOG_WARN);

	/* A popek-api that asks anyway is refused, not obeyed. */
	reply = ask(api_rpc_client_fd(b.cli), json_pack("{s:s}", "op", "pause"));
	assert_string_equal(rpc_str(reply, "error"), "Pausing is not supported by this build of popek");
	json_decref(reply);
	disconnect_both(&b);
}

static void test_metrics_merge(void **state)
{
	struct api_rpc_options opts = { 0 };
	struct both b = { 0 };
	struct metrics *mine;
	char err[256], *line;
	json_t *j;
	int fd;

	(void)state;
	opts.metrics = metrics_create();
	metrics_add(metrics_counter(opts.metrics, "vcpu", "exit_io_in"), 5);
	metrics_set(metrics_gauge(opts.metrics, "vm", "mem_mib"), 128);
	connect_both(&b, &fake_ops, &opts);
	mine = metrics_create();
	metrics_inc(metrics_counter(mine, "api_server", "requests"));
	assert_int_equal(api_rpc_client_fetch_metrics(b.cli, mine, 2000, err, sizeof(err)), 0);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_int_equal(metrics_flush(mine, fd), 0);
	close(fd);
	/* The next period: 2 more exits, the gauge moved. */
	metrics_add(metrics_counter(opts.metrics, "vcpu", "exit_io_in"), 2);
	metrics_set(metrics_gauge(opts.metrics, "vm", "mem_mib"), 64);
	assert_int_equal(api_rpc_client_fetch_metrics(b.cli, mine, 2000, err, sizeof(err)), 0);
	line = metrics_snapshot(mine);
	j = json_loads(line, 0, NULL);
	free(line);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "vcpu"),
							    "exit_io_in")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "vm"), "mem_mib")),
			 64);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "api_server"),
							    "requests")), 0);
	json_decref(j);
	disconnect_both(&b);
	metrics_destroy(mine);
	metrics_destroy(opts.metrics);

	/* Without VMM counters: nothing to add, no error. */
	connect_both(&b, &fake_ops, NULL);
	mine = metrics_create();
	assert_int_equal(api_rpc_client_fetch_metrics(b.cli, mine, 2000, err, sizeof(err)), 0);
	disconnect_both(&b);
	metrics_destroy(mine);
}

/* ---- popek's side given malformed requests ---- */

/* popek's thread on sv[0]; the test plays popek-api on the returned fd. */
static struct api_rpc_server *raw_server(struct fake *f, int *fd)
{
	char err[256];
	json_t *hello;
	int sv[2];
	struct api_rpc_server *s;

	pair(sv);
	s = api_rpc_attach(sv[0], NULL, &fake_ops, f, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(rpc_recv(sv[1], 2000, &hello, err, sizeof(err)), 1);
	assert_string_equal(rpc_str(hello, "op"), "hello");
	json_decref(hello);
	*fd = sv[1];
	return s;
}

static const char *const bad_requests[] = {
	"{op: start}",
	"[]",
	"{}",
	"{\"op\": 5}",
	"{\"op\": \"explode\"}",
	"{\"op\": \"start\"}",
	"{\"op\": \"start\", \"config\": []}",
	"{\"op\": \"set_balloon_target\"}",
	"{\"op\": \"set_balloon_target\", \"amount_mib\": -1}",
	"{\"op\": \"set_balloon_target\", \"amount_mib\": 4294967296}",
	"{\"op\": \"set_balloon_target\", \"amount_mib\": \"5\"}",
	"{\"op\": \"set_balloon_stats_interval\", \"interval_s\": 1.5}",
	"{\"op\": \"update_drive\", \"drive\": {\"path_on_host\": \"/x\"}}",
	"{\"op\": \"update_net\", \"iface\": 7}",
	"{\"op\": \"configure_logger\"}",
	"{\"op\": \"failed\"}",
};

static void test_server_drops_malformed(void **state)
{
	struct api_rpc_server *s;
	struct fake f = { 0 };
	char err[256];
	json_t *msg;
	size_t i;
	int fd;

	(void)state;
	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		s = raw_server(&f, &fd);
		put_frame(fd, bad_requests[i], (uint32_t)strlen(bad_requests[i]));
		/* No reply: the connection ends. */
		if (rpc_recv(fd, 2000, &msg, err, sizeof(err)) != 0)
			fail_msg("request %zu (%s) was not dropped", i, bad_requests[i]);
		/* Not ready, and says so. */
		assert_int_equal(api_rpc_wait_ready(s, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "closed its connection"));
		api_rpc_stop(s);
		close(fd);
	}
	/* Framing errors too. */
	s = raw_server(&f, &fd);
	put_frame(fd, NULL, API_RPC_MAX_MSG + 1);
	assert_int_equal(rpc_recv(fd, 2000, &msg, err, sizeof(err)), 0);
	api_rpc_stop(s);
	close(fd);
	s = raw_server(&f, &fd);
	put_frame(fd, "{\"op\"", 100);
	shutdown(fd, SHUT_WR);
	assert_int_equal(rpc_recv(fd, 2000, &msg, err, sizeof(err)), 0);
	api_rpc_stop(s);
	close(fd);
	assert_int_equal(f.starts + f.pauses + f.loggers, 0);
}

static void test_server_ready_failed(void **state)
{
	struct api_rpc_server *s;
	struct fake f = { 0 };
	char err[256];
	json_t *reply;
	int fd;

	(void)state;
	s = raw_server(&f, &fd);
	reply = ask(fd, json_pack("{s:s}", "op", "ready"));
	assert_true(json_is_true(json_object_get(reply, "ok")));
	json_decref(reply);
	assert_int_equal(api_rpc_wait_ready(s, err, sizeof(err)), 0);
	api_rpc_stop(s);
	close(fd);

	s = raw_server(&f, &fd);
	reply = ask(fd, json_pack("{s:s,s:s}", "op", "failed", "error",
				  "/x.sock is in use by another process"));
	json_decref(reply);
	close(fd);
	assert_int_equal(api_rpc_wait_ready(s, err, sizeof(err)), -1);
	assert_string_equal(err, "/x.sock is in use by another process");
	api_rpc_stop(s);
}

/* ---- popek-api's side given malformed messages ---- */

static struct api_rpc_client *client_with_hello(const char *hello, int *fd, char *err,
						size_t errlen)
{
	int sv[2];

	pair(sv);
	put_frame(sv[0], hello, (uint32_t)strlen(hello));
	*fd = sv[0];
	return api_rpc_client_open(sv[1], 1000, err, errlen);
}

#define GOOD_HELLO                                                                     \
	"{\"op\":\"hello\",\"version\":1,\"ops\":[\"pause\",\"nonsense\",3],\"config\":null," \
	"\"id\":null,\"log_level\":1}"

static void test_client_bad_hello(void **state)
{
	static const struct {
		const char *hello;
		const char *needle;
	} cases[] = {
		{ "{\"op\":\"ready\"}", "not a \"hello\"" },
		{ "{\"op\":\"hello\",\"version\":2,\"ops\":[],\"config\":null,\"id\":null,"
		  "\"log_level\":1}", "same build" },
		{ "{\"op\":\"hello\",\"version\":1,\"ops\":{},\"config\":null,\"id\":null,"
		  "\"log_level\":1}", "malformed" },
		{ "{\"op\":\"hello\",\"version\":1,\"ops\":[],\"config\":null,\"id\":null,"
		  "\"log_level\":9}", "malformed" },
		{ "{\"op\":\"hello\",\"version\":1,\"ops\":[],\"config\":{\"machine-config\":"
		  "{\"vcpu_count\":0,\"mem_size_mib\":1}},\"id\":null,\"log_level\":1}",
		  "configuration from popek is refused" },
		{ "[1]", "no \"hello\"" },
	};
	struct api_rpc_client *c;
	char err[256];
	size_t i;
	int fd;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = client_with_hello(cases[i].hello, &fd, err, sizeof(err));
		assert_null(c);
		if (!strstr(err, cases[i].needle))
			fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].needle, err);
		close(fd);
	}
	/* Nothing at all: the timeout. */
	{
		int sv[2];

		pair(sv);
		assert_null(api_rpc_client_open(sv[1], 50, err, sizeof(err)));
		assert_non_null(strstr(err, "time"));
		close(sv[0]);
	}
	/* Unknown op names are ignored. */
	c = client_with_hello(GOOD_HELLO, &fd, err, sizeof(err));
	assert_non_null(c);
	assert_non_null(api_rpc_client_ops(c)->pause);
	assert_null(api_rpc_client_ops(c)->start);
	api_rpc_client_close(c);
	close(fd);
}

struct replier {
	int fd;
	const char *reply;          /* raw frame body */
};

static void *reply_once(void *arg)
{
	struct replier *r = arg;
	char err[256];
	json_t *req;

	if (rpc_recv(r->fd, 2000, &req, err, sizeof(err)) == 1) {
		json_decref(req);
		put_frame(r->fd, r->reply, (uint32_t)strlen(r->reply));
	}
	return NULL;
}

static void test_client_bad_reply(void **state)
{
	static const char *const replies[] = {
		"{\"ok\":\"yes\"}",
		"{}",
		"{\"ok\":false}",
		"{\"ok\":false,\"error\":5}",
		"[true]",
		"not json",
	};
	struct api_rpc_client *c;
	struct replier r;
	pthread_t t;
	char err[256];
	size_t i;
	int fd;

	(void)state;
	log_set_level(LOG_ERROR);
	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		c = client_with_hello(GOOD_HELLO, &fd, err, sizeof(err));
		assert_non_null(c);
		r.fd = fd;
		r.reply = replies[i];
		pthread_create(&t, NULL, reply_once, &r);
		assert_int_equal(api_rpc_client_ops(c)->pause(c, err, sizeof(err)), -1);
		pthread_join(t, NULL);
		assert_non_null(strstr(err, "popek is gone"));
		assert_false(api_rpc_client_alive(c));
		/* The connection is dropped: popek's end sees it close. */
		{
			json_t *m;

			assert_int_equal(rpc_recv(fd, 1000, &m, err, sizeof(err)), 0);
		}
		api_rpc_client_close(c);
		close(fd);
	}
	/* A reply that does not come in time breaks the connection too. */
	c = client_with_hello(GOOD_HELLO, &fd, err, sizeof(err));
	assert_int_equal(api_rpc_client_fetch_metrics(c, NULL, 50, err, sizeof(err)), -1);
	assert_false(api_rpc_client_alive(c));
	api_rpc_client_close(c);
	close(fd);
	log_set_level(LOG_WARN);
}

/* ---- the process ---- */

static void test_start_errors(void **state)
{
	struct api_rpc_server *s;
	static const char script[] = "#!/bin/sh\ntrap '' TERM\nexec sleep 60\n";
	char err[512], path[] = "/tmp/popek-test-rpc-XXXXXX";
	struct timespec t0, t1;
	int fd;

	(void)state;
	s = api_rpc_start("/tmp/none.sock", "/nonexistent/popek-api", &fake_ops, NULL, err,
			  sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "/nonexistent/popek-api"));
	assert_non_null(strstr(err, "No such file"));

	/* A program that exits at once. */
	s = api_rpc_start("/tmp/none.sock", "/bin/false", &fake_ops, NULL, err, sizeof(err));
	assert_non_null(s);
	assert_true(api_rpc_pid(s) > 0);
	assert_int_equal(api_rpc_wait_ready(s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exited with status 1"));
	api_rpc_stop(s);

	/* One that ignores SIGTERM and never answers: killed after the
	 * timeout. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
	close(fd);
	chmod(path, 0700);
	s = api_rpc_start("/tmp/none.sock", path, &fake_ops, NULL, err, sizeof(err));
	assert_non_null(s);
	usleep(200 * 1000);         /* the trap is set */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	log_set_level(LOG_ERROR);
	api_rpc_stop(s);
	log_set_level(LOG_WARN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec >= API_RPC_STOP_TIMEOUT_MS / 1000 - 1);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_big),
		cmocka_unit_test(test_frame_malformed),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_start_config_checked),
		cmocka_unit_test(test_missing_ops),
		cmocka_unit_test(test_metrics_merge),
		cmocka_unit_test(test_server_drops_malformed),
		cmocka_unit_test(test_server_ready_failed),
		cmocka_unit_test(test_client_bad_hello),
		cmocka_unit_test(test_client_bad_reply),
		cmocka_unit_test(test_start_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
