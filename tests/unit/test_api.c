/* The API: routes called directly (every endpoint, before and after start,
 * every refusal), the HTTP server on a real Unix socket talked to with raw
 * bytes (status, headers, limits, malformed requests, socket file
 * handling, many clients at once), and the metrics registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/server.h"
#include "util/log.h"
#include "vmm/config.h"

/* ---- a fake VM ---- */

struct fake {
	enum vm_state state;
	int starts, pauses, resumes, cad;
	unsigned vcpus_at_start;
	uint32_t balloon_target, stats_interval;
	char drive_path[64];
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

	f->cad++;
	return fake_fail(f, err, errlen);
}

static int fake_balloon(void *o, uint32_t mib, char *err, size_t errlen)
{
	struct fake *f = o;

	f->balloon_target = mib;
	return fake_fail(f, err, errlen);
}

static int fake_interval(void *o, uint32_t s, char *err, size_t errlen)
{
	struct fake *f = o;

	f->stats_interval = s;
	return fake_fail(f, err, errlen);
}

static int fake_stats(void *o, char **json, char *err, size_t errlen)
{
	if (fake_fail(o, err, errlen))
		return -1;
	*json = strdup("{\"target_pages\":1,\"actual_pages\":1,\"target_mib\":0,\"actual_mib\":0}");
	return 0;
}

static int fake_drive(void *o, const struct drive_config *d, char *err, size_t errlen)
{
	struct fake *f = o;

	if (fake_fail(f, err, errlen))
		return -1;
	snprintf(f->drive_path, sizeof(f->drive_path), "%s", d->path_on_host);
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
	.state = fake_state,
};

/* ---- calling the routes directly ---- */

static struct api_response call(struct api_routes *r, const char *method, const char *path,
				const char *body)
{
	struct api_request req = {
		.method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0,
	};
	struct api_response resp = { 0 };

	api_routes_handle(r, &req, &resp);
	return resp;
}

static void expect(struct api_routes *r, const char *method, const char *path, const char *body,
		   unsigned status, const char *needle)
{
	struct api_response resp = call(r, method, path, body);

	if (resp.status != status)
		fail_msg("%s %s: status %u (%s), not %u", method, path, resp.status,
			 resp.body ? resp.body : "no body", status);
	if (status == 204 && resp.body)
		fail_msg("%s %s: 204 with a body %s", method, path, resp.body);
	if (status != 204 && !resp.body)
		fail_msg("%s %s: no body", method, path);
	/* Every error is Firecracker's {"fault_message": "..."}: the needle
	 * is looked for in the message, unescaped. */
	if (status >= 400) {
		json_t *j = json_loads(resp.body, 0, NULL);
		const char *msg;

		assert_non_null(j);
		msg = json_string_value(json_object_get(j, "fault_message"));
		assert_non_null(msg);
		assert_int_equal(json_object_size(j), 1);
		if (needle && !strstr(msg, needle))
			fail_msg("%s %s: \"%s\" does not hold \"%s\"", method, path, msg, needle);
		json_decref(j);
	} else if (needle && !strstr(resp.body, needle)) {
		fail_msg("%s %s: \"%s\" does not hold \"%s\"", method, path, resp.body, needle);
	}
	free(resp.body);
}

#define NOT_AFTER  "The requested operation is not supported after starting the microVM."
#define NOT_BEFORE "The requested operation is not supported before starting the microVM."

static void test_routes_lifecycle(void **state)
{
	struct fake f = { .state = VM_STATE_NOT_STARTED };
	struct api_routes *r;
	char err[256];

	(void)state;
	r = api_routes_create(&fake_ops, &f, NULL, NULL, "vm1", err, sizeof(err));
	assert_non_null(r);
	expect(r, "GET", "/", NULL, 200, "{\"id\":\"vm1\",\"state\":\"Not started\",\"vmm_version\":\""
					 POPEK_VERSION "\",\"app_name\":\"popek\"}");
	expect(r, "GET", "/version", NULL, 200, "{\"firecracker_version\":\"" POPEK_VERSION "\"}");
	expect(r, "GET", "/machine-config", NULL, 200, "\"vcpu_count\":1,\"mem_size_mib\":128");

	/* Firecracker's getting-started sequence. */
	expect(r, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"boot_args\": "
					 "\"console=ttyS0 reboot=k panic=1 pci=off\"}", 204, NULL);
	expect(r, "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": "
					   "\"/r.ext4\", \"is_root_device\": true, "
					   "\"is_read_only\": false}", 204, NULL);
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 1024}", 204,
	       NULL);
	expect(r, "PATCH", "/machine-config/", "{\"vcpu_count\": 3}", 204, NULL);
	expect(r, "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", "
						     "\"host_dev_name\": \"tap0\"}", 204, NULL);
	expect(r, "PUT", "/balloon", "{\"amount_mib\": 0, \"deflate_on_oom\": true, "
				     "\"stats_polling_interval_s\": 1}", 204, NULL);
	expect(r, "PATCH", "/balloon", "{\"amount_mib\": 10}", 204, NULL);
	assert_int_equal(f.balloon_target, 0);     /* before start: configuration only */
	expect(r, "GET", "/balloon", NULL, 200, "\"amount_mib\":10");
	expect(r, "PUT", "/entropy", "{}", 204, NULL);

	/* Only after start. */
	expect(r, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, NOT_BEFORE);
	expect(r, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\"}",
	       400, NOT_BEFORE);
	expect(r, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, NOT_BEFORE);
	expect(r, "GET", "/balloon/statistics", NULL, 400, NOT_BEFORE);
	assert_int_equal(f.pauses + f.cad, 0);

	expect(r, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_int_equal(f.starts, 1);
	assert_int_equal(f.vcpus_at_start, 3);
	expect(r, "GET", "/", NULL, 200, "\"state\":\"Running\"");

	/* Only before start. */
	expect(r, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, NOT_AFTER);
	expect(r, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}", 400, NOT_AFTER);
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}", 400,
	       NOT_AFTER);
	expect(r, "PATCH", "/machine-config", "{\"vcpu_count\": 2}", 400, NOT_AFTER);
	expect(r, "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\", "
					   "\"is_root_device\": true}", 400, NOT_AFTER);
	expect(r, "PUT", "/network-interfaces/eth1", "{}", 400, NOT_AFTER);
	expect(r, "PUT", "/logger", "{}", 400, NOT_AFTER);
	expect(r, "PUT", "/metrics", "{\"metrics_path\": \"/m\"}", 400, NOT_AFTER);
	expect(r, "PUT", "/entropy", "{}", 400, NOT_AFTER);
	expect(r, "PUT", "/balloon", "{\"amount_mib\": 0, \"deflate_on_oom\": true}", 400,
	       NOT_AFTER);
	assert_int_equal(f.starts, 1);

	expect(r, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	assert_int_equal(f.pauses, 1);
	expect(r, "GET", "/", NULL, 200, "\"state\":\"Paused\"");
	expect(r, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_int_equal(f.resumes, 1);
	expect(r, "GET", "/", NULL, 200, "\"state\":\"Running\"");
	expect(r, "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400,
	       "unknown variant \"Stopped\" for \"state\" in vm");
	expect(r, "PATCH", "/vm", "{\"state\": \"Paused\", \"x\": 1}", 400, "unknown field \"x\"");
	expect(r, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(f.cad, 1);
	expect(r, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);

	expect(r, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/new\"}",
	       204, NULL);
	assert_string_equal(f.drive_path, "/new");
	expect(r, "GET", "/vm/config", NULL, 200, "\"path_on_host\":\"/new\"");
	expect(r, "PATCH", "/balloon", "{\"amount_mib\": 20}", 204, NULL);
	assert_int_equal(f.balloon_target, 20);
	expect(r, "GET", "/balloon/statistics", NULL, 200, "\"target_pages\":1");
	expect(r, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 7}", 204, NULL);
	assert_int_equal(f.stats_interval, 7);
	expect(r, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 0}", 400,
	       "Cannot enable/disable the statistics after boot.");
	/* PATCH /network-interfaces has no op in this fake. */
	expect(r, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
	       "PATCH /network-interfaces is not supported by this build of popek");

	/* A VMM refusal is the fault message, and changes nothing. */
	snprintf(f.fail, sizeof(f.fail), "the disk is on fire");
	expect(r, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/z\"}",
	       400, "the disk is on fire");
	expect(r, "GET", "/vm/config", NULL, 200, "\"path_on_host\":\"/new\"");
	expect(r, "PATCH", "/balloon", "{\"amount_mib\": 30}", 400, "the disk is on fire");
	expect(r, "GET", "/balloon", NULL, 200, "\"amount_mib\":20");
	expect(r, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "the disk is on fire");
	expect(r, "GET", "/", NULL, 200, "\"state\":\"Running\"");
	api_routes_destroy(r);
}

static void test_routes_errors(void **state)
{
	struct fake f = { .state = VM_STATE_NOT_STARTED };
	static const struct api_ops no_ops = { 0 };
	struct api_routes *r;
	char err[256];

	(void)state;
	r = api_routes_create(&fake_ops, &f, NULL, NULL, NULL, err, sizeof(err));
	assert_non_null(r);
	expect(r, "GET", "/", NULL, 200, "\"id\":\"anonymous-instance\"");
	expect(r, "GET", "/nope", NULL, 400, "Invalid request method and/or path: GET nope.");
	expect(r, "PUT", "/vm", "{}", 400, "Invalid request method and/or path: PUT vm.");
	expect(r, "POST", "/actions", "{}", 400, "Invalid request method and/or path: POST actions.");
	expect(r, "DELETE", "/drives/x", NULL, 400, "Invalid request method and/or path");
	expect(r, "GET", "/drives/x/y", NULL, 400, "Invalid request method and/or path");
	expect(r, "GET", "/", "{}", 400, "GET request cannot have a body.");
	expect(r, "PUT", "/boot-source", NULL, 400, "Empty PUT request.");
	expect(r, "PATCH", "/vm", NULL, 400, "Empty PATCH request.");
	expect(r, "PUT", "/snapshot/create", "{}", 400, "popek does not support /snapshot/create yet");
	expect(r, "PUT", "/snapshot/load", "{}", 400, "popek does not support /snapshot/load yet");
	expect(r, "PUT", "/vsock", "{}", 400, "popek does not support /vsock yet");
	expect(r, "GET", "/mmds", NULL, 400, "popek does not support /mmds yet");
	expect(r, "PUT", "/mmds/config", "{}", 400, "popek does not support /mmds/config yet");
	expect(r, "PUT", "/cpu-config", "{}", 400, "popek does not support /cpu-config yet");
	expect(r, "PUT", "/hotplug/memory", "{}", 400, "popek does not support /hotplug/memory yet");
	expect(r, "GET", "/balloon/hinting/status", NULL, 400,
	       "popek does not support /balloon/hinting/status yet");
	expect(r, "PUT", "/drives", "{}", 400, "The ID cannot be empty.");
	expect(r, "PUT", "/drives/a-b", "{}", 400,
	       "API Resource IDs can only contain alphanumeric characters and underscores.");
	expect(r, "PUT", "/drives/x", "{\"drive_id\": \"y\", \"path_on_host\": \"/p\", "
				      "\"is_root_device\": false}", 400,
	       "The id from the path does not match the id from the body!");
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": 2", 400,
	       "An error occurred when deserializing the json body of a request: invalid JSON");
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64, \"foo\": 1}",
	       400, "An error occurred when deserializing the json body of a request: unknown "
		    "field \"foo\" in machine-config");
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": true, \"mem_size_mib\": 64}", 400,
	       "invalid type for \"vcpu_count\"");
	expect(r, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 64}", 400,
	       "Machine config error: the number of vCPUs");
	expect(r, "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
	       "unknown variant \"Reboot\" for \"action_type\"");
	expect(r, "PUT", "/actions", "{}", 400, "missing field \"action_type\" in actions");
	expect(r, "PUT", "/actions", "{\"action_type\": 1}", 400, "invalid type for \"action_type\"");
	expect(r, "GET", "/balloon", NULL, 400, "No balloon device found.");
	expect(r, "PUT", "/metrics", "{\"metrics_path\": \"/nonexistent/dir/m\"}", 400,
	       "Cannot initialize the metrics system: /nonexistent/dir/m");
	/* InstanceStart refused by the VMM: still not started. */
	snprintf(f.fail, sizeof(f.fail), "no kernel");
	expect(r, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "no kernel");
	expect(r, "GET", "/", NULL, 200, "Not started");
	api_routes_destroy(r);

	/* A build without the controls: every one refused by name. */
	r = api_routes_create(&no_ops, NULL, NULL, NULL, NULL, err, sizeof(err));
	assert_non_null(r);
	expect(r, "PUT", "/logger", "{\"log_path\": \"/tmp/l\"}", 400,
	       "log_path is not supported by this build of popek");
	expect(r, "PUT", "/logger", "{\"level\": \"error\"}", 204, NULL);
	assert_int_equal(log_get_level(), LOG_ERROR);
	log_set_level(LOG_WARN);
	expect(r, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "InstanceStart is not supported by this build of popek");
	api_routes_destroy(r);
}

/* The configuration file's logger and metrics act at creation. */
static void test_routes_initial_config(void **state)
{
	char path[] = "/tmp/popek-test-metrics-XXXXXX", body[128], err[256];
	struct fake f = { .state = VM_STATE_NOT_STARTED };
	struct vm_config cfg;
	struct api_routes *r;
	struct metrics *m;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	vm_config_init(&cfg);
	snprintf(body, sizeof(body), "{\"metrics\": {\"metrics_path\": \"%s\"}}", path);
	assert_int_equal(vm_config_load_json(&cfg, body, strlen(body), err, sizeof(err)), 0);
	m = metrics_create();
	r = api_routes_create(&fake_ops, &f, m, &cfg, NULL, err, sizeof(err));
	vm_config_free(&cfg);
	assert_non_null(r);
	assert_ptr_equal(api_routes_metrics(r), m);
	expect(r, "GET", "/version", NULL, 200, NULL);
	expect(r, "PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\"}", 400,
	       "Reinitialization of metrics not allowed.");
	expect(r, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	api_routes_destroy(r);
	metrics_destroy(m);
	{
		char buf[8192];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		json_t *j;

		assert_true(n > 0);
		buf[n] = '\0';
		/* The first line: the flush, with the counts so far. */
		*strchr(buf, '\n') = '\0';
		j = json_loads(buf, 0, NULL);
		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(
			json_object_get(j, "get_api_requests"), "vmm_version_count")), 1);
		assert_int_equal(json_integer_value(json_object_get(
			json_object_get(j, "put_api_requests"), "metrics_fails")), 1);
		assert_true(json_integer_value(json_object_get(j, "utc_timestamp_ms")) > 0);
		json_decref(j);
	}
	close(fd);
	unlink(path);
}

/* ---- the HTTP server on a socket ---- */

static char sock_dir[48], sock_path[96];
static struct api_server *the_server;
static struct api_routes *the_routes;

struct http_reply {
	unsigned status;
	char head[2048];
	char body[65536];
};

/* Sends raw bytes, reads until the server closes (requests say
 * "Connection: close"), parses status, headers and body. */
static int http_raw(const char *path, const char *req, size_t len, struct http_reply *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	char buf[sizeof(out->head) + sizeof(out->body)];
	size_t got = 0;
	ssize_t n;
	char *sep;
	int fd;

	memset(out, 0, sizeof(*out));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len) {
		n = send(fd, req, len, MSG_NOSIGNAL);
		if (n <= 0)
			break;      /* the server may close early on a bad request */
		req += n;
		len -= (size_t)n;
	}
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	if (!got)
		return -2;          /* closed without an answer */
	if (sscanf(buf, "HTTP/1.%*d %u", &out->status) != 1)
		return -1;
	sep = strstr(buf, "\r\n\r\n");
	if (!sep)
		return -1;
	snprintf(out->head, sizeof(out->head), "%.*s", (int)(sep - buf), buf);
	snprintf(out->body, sizeof(out->body), "%s", sep + 4);
	return 0;
}

static int http_str(const char *path, const char *req, struct http_reply *out)
{
	return http_raw(path, req, strlen(req), out);
}

static int http(const char *method, const char *path, const char *body, struct http_reply *out)
{
	size_t cap = 512 + (body ? strlen(body) : 0);
	char *req = malloc(cap);
	int n, ret;

	n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
		     method, path);
	if (body)
		n += snprintf(req + n, cap - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			      strlen(body), body);
	else
		n += snprintf(req + n, cap - (size_t)n, "\r\n");
	ret = http_raw(sock_path, req, (size_t)n, out);
	free(req);
	return ret;
}

static bool is_json_head(const char *head)
{
	return strstr(head, "\r\nContent-Type: application/json") != NULL;
}

static int setup_server(void **state)
{
	static struct fake f;
	struct api_routes *r;
	struct api_server *srv;
	char err[256];

	snprintf(sock_dir, sizeof(sock_dir), "/tmp/popek-test-api-XXXXXX");
	if (!mkdtemp(sock_dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", sock_dir);
	memset(&f, 0, sizeof(f));
	r = api_routes_create(&fake_ops, &f, NULL, NULL, NULL, err, sizeof(err));
	srv = r ? api_server_start(sock_path, api_routes_handle, r, err, sizeof(err)) : NULL;
	if (!srv) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	the_server = srv;
	the_routes = r;
	(void)state;
	return 0;
}

static int teardown_server(void **state)
{
	struct stat st;

	(void)state;
	api_server_stop(the_server);
	api_routes_destroy(the_routes);
	/* The socket file goes with the server. */
	assert_int_equal(lstat(sock_path, &st), -1);
	rmdir(sock_dir);
	return 0;
}

static void test_server_http(void **state)
{
	struct http_reply rep;
	struct stat st;
	char *big;

	(void)state;
	assert_int_equal(lstat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(http("GET", "/", NULL, &rep), 0);
	assert_int_equal(rep.status, 200);
	assert_true(is_json_head(rep.head));
	assert_non_null(strstr(rep.body, "\"app_name\":\"popek\""));

	assert_int_equal(http("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}",
			      &rep), 0);
	assert_int_equal(rep.status, 204);
	assert_null(strstr(rep.head, "Content-Type"));
	assert_string_equal(rep.body, "");

	assert_int_equal(http("PUT", "/machine-config", "{\"vcpu_count\": \"x\"}", &rep), 0);
	assert_int_equal(rep.status, 400);
	assert_true(is_json_head(rep.head));
	assert_non_null(strstr(rep.body, "{\"fault_message\":\"An error occurred when "
					 "deserializing the json body of a request: invalid type"));

	/* A query string does not change the path. */
	assert_int_equal(http("GET", "/machine-config?x=1", NULL, &rep), 0);
	assert_int_equal(rep.status, 200);
	assert_non_null(strstr(rep.body, "\"vcpu_count\":2"));

	/* Malformed HTTP: libmicrohttpd answers 400 itself (with its own
	 * HTML body), or closes the connection when there is no request
	 * line to answer. */
	assert_int_equal(http_str(sock_path, "GARBAGE\r\n\r\n", &rep), -2);
	assert_int_equal(http_str(sock_path, "GET / FOO/1.1\r\n\r\n", &rep), 0);
	assert_int_equal(rep.status, 400);
	assert_int_equal(http_str(sock_path, "GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n", &rep), 0);
	assert_int_equal(rep.status, 400);
	assert_int_equal(http_str(sock_path, "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", &rep), 0);
	assert_int_equal(rep.status, 400);

	/* The payload limit: announced, or found out while it arrives. */
	big = malloc(API_MAX_BODY + 200);
	memset(big, ' ', API_MAX_BODY + 1);
	big[0] = '{';
	big[API_MAX_BODY] = '}';
	big[API_MAX_BODY + 1] = '\0';
	assert_int_equal(http("PUT", "/machine-config", big, &rep), 0);
	assert_int_equal(rep.status, 400);
	assert_true(is_json_head(rep.head));
	assert_non_null(strstr(rep.body, "Request payload with size 51201 is larger than the "
					 "limit of 51200 allowed by server."));
	big[API_MAX_BODY - 1] = '}';
	big[API_MAX_BODY] = '\0';
	assert_int_equal(http("PUT", "/machine-config", big, &rep), 0);
	assert_int_equal(rep.status, 400);
	assert_non_null(strstr(rep.body, "missing field \\\"vcpu_count\\\""));
	{
		/* Chunked: 2 chunks of 30000 bytes. */
		size_t cap = 2 * 30000 + 512, n;
		char *req = malloc(cap);

		n = (size_t)snprintf(req, cap, "PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
				     "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < 2; i++) {
			n += (size_t)snprintf(req + n, cap - n, "7530\r\n");
			memset(req + n, ' ', 30000);
			n += 30000;
			n += (size_t)snprintf(req + n, cap - n, "\r\n");
		}
		n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
		assert_int_equal(http_raw(sock_path, req, n, &rep), 0);
		assert_int_equal(rep.status, 400);
		assert_non_null(strstr(rep.body, "Request payload with size 60000 is larger"));
		free(req);
	}
	free(big);

	/* Still serving. */
	assert_int_equal(http("GET", "/version", NULL, &rep), 0);
	assert_int_equal(rep.status, 200);
}

/* Several requests on one kept-alive connection. */
static void test_server_keepalive(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	static const char req[] = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	int fd, i, seen = 0;
	char *p;
	ssize_t n;

	(void)state;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (i = 0; i < 3; i++) {
		assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		while (!strstr(buf, "}") && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
			got += (size_t)n;
			buf[got] = '\0';
		}
		for (p = buf; (p = strstr(p, "HTTP/1.1 200")); p++)
			seen++;
		got = 0;
		buf[0] = '\0';
	}
	close(fd);
	assert_int_equal(seen, 3);
}

struct client_arg {
	int ok, bad;
};

static void *client(void *arg)
{
	struct client_arg *c = arg;
	struct http_reply *rep = malloc(sizeof(*rep));
	int i;

	for (i = 0; i < 25; i++) {
		if (!http(i % 2 ? "GET" : "PUT", i % 2 ? "/" : "/nope", i % 2 ? NULL : "{}", rep) &&
		    rep->status == (i % 2 ? 200u : 400u))
			c->ok++;
		else
			c->bad++;
	}
	free(rep);
	return NULL;
}

static void test_server_concurrent(void **state)
{
	struct client_arg args[20] = { { 0 } };
	pthread_t t[20];
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		assert_int_equal(pthread_create(&t[i], NULL, client, &args[i]), 0);
	for (i = 0; i < 20; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].ok, 25);
	}
}

static void test_server_socket_file(void **state)
{
	char dir[] = "/tmp/popek-test-sock-XXXXXX", path[96], err[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_server *srv, *again;
	struct api_routes *r;
	struct fake f = { 0 };
	struct http_reply rep;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	r = api_routes_create(&fake_ops, &f, NULL, NULL, NULL, err, sizeof(err));

	/* A socket file left by a dead process: replaced. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	srv = api_server_start(path, api_routes_handle, r, err, sizeof(err));
	if (!srv)
		fail_msg("stale socket: %s", err);
	assert_int_equal(http_str(path, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &rep), 0);
	assert_int_equal(rep.status, 200);

	/* A live one: refused, and left alone. */
	again = api_server_start(path, api_routes_handle, r, err, sizeof(err));
	assert_null(again);
	assert_non_null(strstr(err, "is in use by another process"));
	assert_int_equal(http_str(path, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &rep), 0);
	api_server_stop(srv);
	assert_int_equal(access(path, F_OK), -1);

	/* Not a socket: refused, and not removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_null(api_server_start(path, api_routes_handle, r, err, sizeof(err)));
	assert_non_null(strstr(err, "exists and is not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	assert_null(api_server_start("/tmp/a-very-long-path-of-a-socket-that-does-not-fit-"
				     "into-sun-path-because-it-is-longer-than-one-hundred-and-"
				     "eight-bytes.sock",
				     api_routes_handle, r, err, sizeof(err)));
	assert_non_null(strstr(err, "at most 107 bytes"));
	assert_null(api_server_start("/nonexistent-dir/api.sock", api_routes_handle, r, err,
				     sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
	api_routes_destroy(r);
	rmdir(dir);
}

/* ---- metrics ---- */

static json_t *snapshot(struct metrics *m)
{
	char *line = metrics_snapshot(m);
	json_t *j;

	assert_non_null(line);
	assert_non_null(strchr(line, '\n'));
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	free(line);
	return j;
}

static long long value(json_t *j, const char *group, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(j, group), name));
}

static void test_metrics(void **state)
{
	struct metrics *m = metrics_create();
	struct metrics_counter *a, *b, *g;
	char name[32], buf[4096];
	int pfd[2], i;
	ssize_t n;
	json_t *j;

	(void)state;
	a = metrics_counter(m, "vcpu", "exit_io_in");
	b = metrics_counter(m, "vcpu", "exit_io_out");
	g = metrics_gauge(m, "vmm", "vcpus");
	assert_ptr_equal(metrics_counter(m, "vcpu", "exit_io_in"), a);
	assert_null(metrics_counter(m, "", "x"));
	assert_null(metrics_counter(m, "g", "a-name-that-is-much-longer-than-forty-seven-chars"));
	metrics_add(NULL, 1);       /* harmless */
	metrics_add(a, 5);
	metrics_inc(b);
	metrics_set(g, 4);
	assert_int_equal(metrics_read(a), 5);

	j = snapshot(m);
	assert_int_equal(value(j, "vcpu", "exit_io_in"), 5);
	assert_int_equal(value(j, "vcpu", "exit_io_out"), 1);
	assert_int_equal(value(j, "vmm", "vcpus"), 4);
	json_decref(j);

	/* A flush starts a new period: counters show what happened since,
	 * gauges their value. */
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(metrics_flush(m, pfd[1]), 0);
	metrics_add(a, 2);
	assert_int_equal(metrics_flush(m, pfd[1]), 0);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"exit_io_in\":5"));
	assert_non_null(strstr(strchr(buf, '\n'), "\"exit_io_in\":2,\"exit_io_out\":0}"));
	assert_non_null(strstr(strchr(buf, '\n'), "\"vcpus\":4"));
	close(pfd[0]);
	assert_int_equal(metrics_flush(m, pfd[1]), -EPIPE);
	close(pfd[1]);

	for (i = 0; metrics_counter(m, "many", (snprintf(name, sizeof(name), "c%d", i), name)); i++)
		;
	assert_int_equal(i, METRICS_MAX_COUNTERS - 3);
	metrics_destroy(m);
}

static void test_metrics_periodic(void **state)
{
	char path[] = "/tmp/popek-test-metrics-XXXXXX", buf[65536];
	struct metrics *m = metrics_create();
	ssize_t n;
	int fd, lines = 0;
	char *p;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	metrics_counter(m, "api_server", "requests");
	assert_int_equal(metrics_flush_now(m), 0);     /* nothing configured: nothing done */
	assert_int_equal(metrics_start(m, path, 1), 0);
	assert_int_equal(metrics_start(m, path, 1), -EEXIST);
	usleep(2200 * 1000);
	assert_int_equal(metrics_flush_now(m), 0);
	metrics_destroy(m);        /* one last line */
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	for (p = buf; (p = strchr(p, '\n')); p++)
		lines++;
	/* periodic ones (1 s, 2 s), one asked for, one at the end; a busy
	 * host may delay the second periodic one past the end */
	assert_in_range(lines, 3, 4);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_lifecycle),
		cmocka_unit_test(test_routes_errors),
		cmocka_unit_test(test_routes_initial_config),
		cmocka_unit_test_setup_teardown(test_server_http, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_keepalive, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_concurrent, setup_server,
						teardown_server),
		cmocka_unit_test(test_server_socket_file),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_metrics_periodic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
