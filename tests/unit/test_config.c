/* The VM configuration model: Firecracker's bodies and configuration file,
 * every refusal with its message, all-or-nothing updates, and the JSON
 * that GET /vm/config returns loading back to the same configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/config.h"

static char err[512];

static int put(struct vm_config *cfg, const char *section, const char *id, const char *body)
{
	err[0] = '\0';
	return vm_config_apply_json(cfg, section, body, strlen(body), CONFIG_PUT, id, err,
				    sizeof(err));
}

static int patch(struct vm_config *cfg, const char *section, const char *id, const char *body)
{
	err[0] = '\0';
	return vm_config_apply_json(cfg, section, body, strlen(body), CONFIG_PATCH, id, err,
				    sizeof(err));
}

#define expect_fail(call, cls, needle)                                                   \
	do {                                                                             \
		int ret_ = (call);                                                       \
		if (ret_ != (cls))                                                       \
			fail_msg("%s returned %d (err \"%s\"), not %d", #call, ret_, err, \
				 (cls));                                                 \
		if (!strstr(err, (needle)))                                              \
			fail_msg("error \"%s\" does not mention \"%s\"", err, (needle));     \
		assert_null(strchr(err, '\n'));                                          \
	} while (0)

/* Any refused body leaves the configuration exactly as it was. */
static void expect_unchanged(const struct vm_config *cfg, const char *before)
{
	char *now = vm_config_to_json(cfg);

	assert_non_null(now);
	assert_string_equal(now, before);
	free(now);
}

static void test_defaults(void **state)
{
	struct vm_config cfg;
	char *json;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(cfg.machine.vcpu_count, 1);
	assert_int_equal(cfg.machine.mem_size_mib, 128);
	json = vm_config_machine_to_json(&cfg);
	assert_string_equal(json, "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,"
				  "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}");
	free(json);
	assert_null(vm_config_balloon_to_json(&cfg));
	vm_config_free(&cfg);
}

static void test_machine(void **state)
{
	struct vm_config cfg;
	char *before;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(put(&cfg, "machine-config", NULL,
			     "{\"vcpu_count\": 4, \"mem_size_mib\": 2048, \"smt\": false, "
			     "\"track_dirty_pages\": true, \"huge_pages\": \"Transparent\", "
			     "\"cpu_template\": \"None\"}"), 0);
	assert_int_equal(cfg.machine.vcpu_count, 4);
	assert_int_equal(cfg.machine.mem_size_mib, 2048);
	assert_true(cfg.machine.track_dirty_pages);
	assert_int_equal(cfg.machine.huge_pages, HUGE_PAGES_TRANSPARENT);

	/* PATCH changes what it names; PUT resets what it does not. */
	assert_int_equal(patch(&cfg, "machine-config", NULL, "{\"vcpu_count\": 8}"), 0);
	assert_int_equal(cfg.machine.vcpu_count, 8);
	assert_int_equal(cfg.machine.mem_size_mib, 2048);
	assert_true(cfg.machine.track_dirty_pages);
	assert_int_equal(put(&cfg, "machine-config", NULL,
			     "{\"vcpu_count\": 254, \"mem_size_mib\": 2}"), 0);
	assert_false(cfg.machine.track_dirty_pages);
	assert_int_equal(cfg.machine.huge_pages, HUGE_PAGES_NONE);

	before = vm_config_to_json(&cfg);
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
				"\"foo\": 1}"), CONFIG_EPARSE,
		    "unknown field \"foo\" in machine-config, expected one of: vcpu_count");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}"),
		    CONFIG_EPARSE,
		    "invalid type for \"vcpu_count\" in machine-config: expected a non-negative "
		    "integer, got a string");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": -1, \"mem_size_mib\": 64}"),
		    CONFIG_EPARSE, "got an integer below zero");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 1.5, \"mem_size_mib\": 64}"),
		    CONFIG_EPARSE, "got a real number");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": null, \"mem_size_mib\": 64}"),
		    CONFIG_EPARSE, "got null");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"mem_size_mib\": 64}"), CONFIG_EPARSE,
		    "missing field \"vcpu_count\" in machine-config");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 0, \"mem_size_mib\": 64}"),
		    CONFIG_EVALUE, "the number of vCPUs must be between 1 and 254, got 0");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 255, \"mem_size_mib\": 64}"),
		    CONFIG_EVALUE, "got 255");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 1, \"mem_size_mib\": 0}"),
		    CONFIG_EVALUE, "memory size (MiB) must be between 2 and");
	expect_fail(put(&cfg, "machine-config", NULL,
			"{\"vcpu_count\": 1, \"mem_size_mib\": 99999999999999}"),
		    CONFIG_EVALUE, "memory size");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
				"\"smt\": true}"), CONFIG_EVALUE, "simultaneous multithreading");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
				"\"huge_pages\": \"2M\"}"), CONFIG_EVALUE, "hugetlbfs");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
				"\"huge_pages\": \"1G\"}"), CONFIG_EPARSE,
		    "unknown variant \"1G\" for \"huge_pages\" in machine-config, expected one "
		    "of: None, Transparent, 2M");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
				"\"cpu_template\": \"T2\"}"), CONFIG_EVALUE, "CPU templates");
	expect_fail(patch(&cfg, "machine-config", NULL, "{}"), CONFIG_EVALUE,
		    "Empty PATCH request.");
	expect_fail(patch(&cfg, "machine-config", NULL, "{\"smt\": null}"), CONFIG_EVALUE,
		    "Empty PATCH request.");
	/* PATCH checks the merged result. */
	expect_fail(patch(&cfg, "machine-config", NULL, "{\"vcpu_count\": 300}"), CONFIG_EVALUE,
		    "got 300");
	expect_unchanged(&cfg, before);
	free(before);
	vm_config_free(&cfg);
}

static void test_json_syntax(void **state)
{
	struct vm_config cfg;
	char *before;

	(void)state;
	vm_config_init(&cfg);
	before = vm_config_to_json(&cfg);
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 1,"), CONFIG_EPARSE,
		    "invalid JSON at line 1");
	expect_fail(put(&cfg, "machine-config", NULL, ""), CONFIG_EPARSE, "invalid JSON");
	expect_fail(put(&cfg, "machine-config", NULL, "[1, 2]"), CONFIG_EPARSE,
		    "machine-config: expected a JSON object, got an array");
	expect_fail(put(&cfg, "machine-config", NULL, "{\"vcpu_count\": 1, \"mem_size_mib\": 64} x"),
		    CONFIG_EPARSE, "invalid JSON");
	expect_fail(put(&cfg, "machine-config", NULL,
			"{\"vcpu_count\": 1, \"vcpu_count\": 2, \"mem_size_mib\": 64}"),
		    CONFIG_EPARSE, "duplicate");
	expect_fail(put(&cfg, "boot-source", NULL, "{\"kernel_image_path\": \"/a\\u0000b\"}"),
		    CONFIG_EPARSE, "invalid JSON");
	expect_fail(put(&cfg, "boot-source", NULL, "{\"kernel_image_path\": \"\xff\xfe\"}"),
		    CONFIG_EPARSE, "invalid JSON");
	expect_unchanged(&cfg, before);
	free(before);
	vm_config_free(&cfg);
}

static void test_boot_source(void **state)
{
	struct vm_config cfg;
	char *args;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(put(&cfg, "boot-source", NULL,
			     "{\"kernel_image_path\": \"/k\", \"initrd_path\": null, "
			     "\"boot_args\": \"console=ttyS0 reboot=k\"}"), 0);
	assert_true(cfg.boot_source.set);
	assert_string_equal(cfg.boot_source.kernel_image_path, "/k");
	assert_null(cfg.boot_source.initrd_path);
	assert_string_equal(cfg.boot_source.boot_args, "console=ttyS0 reboot=k");
	/* A second PUT replaces the whole boot source. */
	assert_int_equal(put(&cfg, "boot-source", NULL,
			     "{\"kernel_image_path\": \"/k2\", \"initrd_path\": \"/i\"}"), 0);
	assert_string_equal(cfg.boot_source.initrd_path, "/i");
	assert_null(cfg.boot_source.boot_args);

	expect_fail(put(&cfg, "boot-source", NULL, "{\"boot_args\": \"x\"}"), CONFIG_EPARSE,
		    "missing field \"kernel_image_path\" in boot-source");
	expect_fail(put(&cfg, "boot-source", NULL, "{\"kernel_image_path\": \"\"}"),
		    CONFIG_EVALUE, "must not be empty");
	args = malloc(4096 + 64);
	snprintf(args, 64, "{\"kernel_image_path\": \"/k\", \"boot_args\": \"");
	memset(args + strlen(args), 'a', 4096);
	strcpy(args + strlen("{\"kernel_image_path\": \"/k\", \"boot_args\": \"") + 4096, "\"}");
	expect_fail(put(&cfg, "boot-source", NULL, args), CONFIG_EVALUE,
		    "\"boot_args\" in boot-source is 4096 bytes long, at most 4095");
	free(args);
	assert_string_equal(cfg.boot_source.kernel_image_path, "/k2");
	vm_config_free(&cfg);
}

#define DRIVE(id, path, root) \
	"{\"drive_id\": \"" id "\", \"path_on_host\": \"" path "\", \"is_root_device\": " root "}"

static void test_drives(void **state)
{
	struct vm_config cfg;
	char id[16], body[256], *before;
	int i;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(put(&cfg, "drives", "data", DRIVE("data", "/d.img", "false")), 0);
	assert_int_equal(put(&cfg, "drives", "rootfs",
			     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.ext4\", "
			     "\"is_root_device\": true, \"is_read_only\": true, \"partuuid\": null, "
			     "\"cache_type\": \"Writeback\", \"io_engine\": \"Async\", "
			     "\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}, "
			     "\"ops\": null}}"), 0);
	/* The root device comes first, whatever the order of the requests. */
	assert_int_equal(cfg.ndrives, 2);
	assert_string_equal(cfg.drives[0].id, "rootfs");
	assert_true(cfg.drives[0].is_read_only);
	assert_int_equal(cfg.drives[0].cache_type, CACHE_WRITEBACK);
	assert_int_equal(cfg.drives[0].io_engine, IO_ENGINE_ASYNC);
	assert_true(cfg.drives[0].rate_limiter.set);
	assert_int_equal(cfg.drives[0].rate_limiter.bandwidth.size, 1000);
	assert_int_equal(cfg.drives[0].rate_limiter.bandwidth.refill_time, 100);
	assert_false(cfg.drives[0].rate_limiter.ops.set);
	assert_string_equal(cfg.drives[1].id, "data");
	/* Replacing a drive keeps its place. */
	assert_int_equal(put(&cfg, "drives", "data", DRIVE("data", "/d2.img", "false")), 0);
	assert_int_equal(cfg.ndrives, 2);
	assert_string_equal(cfg.drives[1].path_on_host, "/d2.img");
	assert_non_null(vm_config_find_drive(&cfg, "data"));
	assert_null(vm_config_find_drive(&cfg, "nope"));

	before = vm_config_to_json(&cfg);
	expect_fail(put(&cfg, "drives", "other", DRIVE("data", "/x", "false")), CONFIG_EVALUE,
		    "The id from the path does not match the id from the body!");
	expect_fail(put(&cfg, "drives", "root2", DRIVE("root2", "/x", "true")), CONFIG_EVALUE,
		    "A root block device already exists!");
	expect_fail(put(&cfg, "drives", NULL, DRIVE("a-b", "/x", "false")), CONFIG_EVALUE,
		    "API Resource IDs can only contain alphanumeric characters and underscores.");
	expect_fail(put(&cfg, "drives", NULL, DRIVE("", "/x", "false")), CONFIG_EVALUE,
		    "The ID cannot be empty.");
	expect_fail(put(&cfg, "drives", NULL,
			DRIVE("a12345678901234567890123456789012345678901234567890123456789012345",
			      "/x", "false")), CONFIG_EVALUE, "at most 64 characters");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"is_root_device\": false}"),
		    CONFIG_EPARSE, "missing field \"path_on_host\" in drives");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", "
				"\"is_root_device\": false, \"socket\": \"/s\"}"),
		    CONFIG_EVALUE, "vhost-user");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", "
				"\"is_root_device\": false, \"cache_type\": \"Fast\"}"),
		    CONFIG_EPARSE, "unknown variant \"Fast\" for \"cache_type\"");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", "
				"\"is_root_device\": false, \"rate_limiter\": {\"ops\": "
				"{\"refill_time\": 1}}}"),
		    CONFIG_EPARSE, "missing field \"size\" in drives.rate_limiter.ops");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", "
				"\"is_root_device\": false, \"rate_limiter\": {\"bw\": {}}}"),
		    CONFIG_EPARSE, "unknown field \"bw\" in drives.rate_limiter");
	expect_fail(put(&cfg, "drives", "x", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", "
				"\"is_root_device\": false, \"partuuid\": \"a b\"}"),
		    CONFIG_EVALUE, "partuuid");
	expect_unchanged(&cfg, before);
	free(before);

	/* A root device that stops being one leaves the first place. */
	assert_int_equal(put(&cfg, "drives", "rootfs", DRIVE("rootfs", "/r", "false")), 0);
	assert_int_equal(put(&cfg, "drives", "data", DRIVE("data", "/d", "true")), 0);
	assert_string_equal(cfg.drives[0].id, "data");
	assert_string_equal(cfg.drives[1].id, "rootfs");

	for (i = (int)cfg.ndrives; i < VM_CONFIG_MAX_DRIVES; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"/x\", "
			 "\"is_root_device\": false}", id);
		assert_int_equal(put(&cfg, "drives", id, body), 0);
	}
	expect_fail(put(&cfg, "drives", "more", DRIVE("more", "/x", "false")), CONFIG_EVALUE,
		    "at most 16");
	/* ... but an existing one may still be replaced. */
	assert_int_equal(put(&cfg, "drives", "d5", DRIVE("d5", "/y", "false")), 0);

	/* PATCH: path_on_host and rate_limiter only. */
	assert_int_equal(patch(&cfg, "drives", "d5", "{\"drive_id\": \"d5\", "
					       "\"path_on_host\": \"/new\"}"), 0);
	assert_string_equal(vm_config_find_drive(&cfg, "d5")->path_on_host, "/new");
	assert_int_equal(patch(&cfg, "drives", "d5", "{\"drive_id\": \"d5\", \"rate_limiter\": "
					       "{\"ops\": {\"size\": 5, \"refill_time\": 1, "
					       "\"one_time_burst\": 7}}}"), 0);
	assert_int_equal(vm_config_find_drive(&cfg, "d5")->rate_limiter.ops.one_time_burst, 7);
	/* A bucket the PATCH names replaces that one; the other stays. */
	assert_int_equal(patch(&cfg, "drives", "d5", "{\"drive_id\": \"d5\", \"rate_limiter\": "
					       "{\"bandwidth\": {\"size\": 4096, \"refill_time\": 10}}}"), 0);
	assert_int_equal(vm_config_find_drive(&cfg, "d5")->rate_limiter.bandwidth.size, 4096);
	assert_true(vm_config_find_drive(&cfg, "d5")->rate_limiter.ops.set);
	assert_int_equal(vm_config_find_drive(&cfg, "d5")->rate_limiter.ops.size, 5);
	assert_int_equal(patch(&cfg, "drives", "d5", "{\"drive_id\": \"d5\", \"rate_limiter\": "
					       "{\"ops\": {\"size\": 0, \"refill_time\": 0}}}"), 0);
	assert_int_equal(vm_config_find_drive(&cfg, "d5")->rate_limiter.ops.size, 0);
	assert_int_equal(vm_config_find_drive(&cfg, "d5")->rate_limiter.bandwidth.size, 4096);
	expect_fail(patch(&cfg, "drives", "d5", "{\"drive_id\": \"d5\", \"is_read_only\": true}"),
		    CONFIG_EPARSE, "unknown field \"is_read_only\" in drives");
	expect_fail(patch(&cfg, "drives", "zz", "{\"drive_id\": \"zz\"}"), CONFIG_EVALUE,
		    "no drive with id \"zz\"");
	vm_config_free(&cfg);
}

static void test_network(void **state)
{
	struct vm_config cfg;
	char id[16], body[256];
	int i;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(put(&cfg, "network-interfaces", "eth0",
			     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
			     "\"guest_mac\": \"06:00:AC:10:00:02\", \"mtu\": 1500, "
			     "\"rx_rate_limiter\": null, \"tx_rate_limiter\": {\"bandwidth\": "
			     "{\"size\": 1, \"refill_time\": 2}}}"), 0);
	assert_int_equal(cfg.nifaces, 1);
	assert_true(cfg.ifaces[0].has_guest_mac);
	assert_memory_equal(cfg.ifaces[0].guest_mac, "\x06\x00\xac\x10\x00\x02", 6);
	assert_int_equal(cfg.ifaces[0].mtu, 1500);
	assert_true(cfg.ifaces[0].tx_rate_limiter.set);
	assert_false(cfg.ifaces[0].rx_rate_limiter.set);

	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}"), CONFIG_EVALUE,
		    "The host device name is already in use: tap0");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			"\"guest_mac\": \"06:00:ac:10:00:02\"}"), CONFIG_EVALUE,
		    "The MAC address is already in use");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			"\"guest_mac\": \"06:00:ac:10:00\"}"), CONFIG_EVALUE, "invalid guest_mac");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			"\"guest_mac\": \"06-00-ac-10-00-02\"}"), CONFIG_EVALUE, "invalid guest_mac");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			"\"guest_mac\": \"0g:00:ac:10:00:02\"}"), CONFIG_EVALUE, "invalid guest_mac");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"a-name-far-too-long\"}"),
		    CONFIG_EVALUE, "invalid host_dev_name");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"../tap\"}"),
		    CONFIG_EVALUE, "invalid host_dev_name");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"mtu\": 20}"),
		    CONFIG_EVALUE, "\"mtu\" in network-interfaces must be between 68 and 65535");
	expect_fail(put(&cfg, "network-interfaces", "eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			"\"allow_mmds_requests\": true}"), CONFIG_EPARSE,
		    "unknown field \"allow_mmds_requests\"");
	/* The same interface again replaces it (same tap, same MAC). */
	assert_int_equal(put(&cfg, "network-interfaces", "eth0",
			     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
			     "\"guest_mac\": \"06:00:AC:10:00:02\"}"), 0);
	assert_int_equal(cfg.nifaces, 1);
	assert_int_equal(cfg.ifaces[0].mtu, 0);

	for (i = 1; i < VM_CONFIG_MAX_IFACES; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(body, sizeof(body), "{\"iface_id\": \"%s\", \"host_dev_name\": \"t%d\"}",
			 id, i);
		assert_int_equal(put(&cfg, "network-interfaces", id, body), 0);
	}
	expect_fail(put(&cfg, "network-interfaces", "more",
			"{\"iface_id\": \"more\", \"host_dev_name\": \"tmore\"}"), CONFIG_EVALUE,
		    "at most 16");

	assert_int_equal(patch(&cfg, "network-interfaces", "e3",
			       "{\"iface_id\": \"e3\", \"rx_rate_limiter\": {\"ops\": {\"size\": 9, "
			       "\"refill_time\": 9}}}"), 0);
	assert_int_equal(vm_config_find_iface(&cfg, "e3")->rx_rate_limiter.ops.size, 9);
	expect_fail(patch(&cfg, "network-interfaces", "e3",
			  "{\"iface_id\": \"e3\", \"host_dev_name\": \"x\"}"), CONFIG_EPARSE,
		    "unknown field \"host_dev_name\"");
	expect_fail(patch(&cfg, "network-interfaces", "nope", "{\"iface_id\": \"nope\"}"),
		    CONFIG_EVALUE, "no interface with id \"nope\"");
	vm_config_free(&cfg);
}

static void test_balloon_logger_metrics_entropy(void **state)
{
	struct vm_config cfg;
	char *json;

	(void)state;
	vm_config_init(&cfg);
	expect_fail(patch(&cfg, "balloon", NULL, "{\"amount_mib\": 1}"), CONFIG_EVALUE,
		    "No balloon device found.");
	expect_fail(patch(&cfg, "balloon/statistics", NULL, "{\"stats_polling_interval_s\": 1}"),
		    CONFIG_EVALUE, "No balloon device found.");
	expect_fail(put(&cfg, "balloon", NULL, "{\"amount_mib\": 1}"), CONFIG_EPARSE,
		    "missing field \"deflate_on_oom\" in balloon");
	expect_fail(put(&cfg, "balloon", NULL, "{\"amount_mib\": 129, \"deflate_on_oom\": true}"),
		    CONFIG_EVALUE, "more than the guest's memory (128 MiB)");
	assert_int_equal(put(&cfg, "balloon", NULL, "{\"amount_mib\": 64, \"deflate_on_oom\": true, "
						   "\"stats_polling_interval_s\": 5}"), 0);
	json = vm_config_balloon_to_json(&cfg);
	assert_string_equal(json, "{\"amount_mib\":64,\"deflate_on_oom\":true,"
				  "\"stats_polling_interval_s\":5,\"free_page_hinting\":false,"
				  "\"free_page_reporting\":false}");
	free(json);
	assert_int_equal(patch(&cfg, "balloon", NULL, "{\"amount_mib\": 32}"), 0);
	assert_int_equal(cfg.balloon.amount_mib, 32);
	assert_true(cfg.balloon.deflate_on_oom);
	expect_fail(patch(&cfg, "balloon", NULL, "{\"amount_mib\": 32, \"deflate_on_oom\": true}"),
		    CONFIG_EPARSE, "unknown field \"deflate_on_oom\"");
	assert_int_equal(patch(&cfg, "balloon/statistics", NULL,
			       "{\"stats_polling_interval_s\": 0}"), 0);
	assert_int_equal(cfg.balloon.stats_polling_interval_s, 0);
	expect_fail(patch(&cfg, "balloon/statistics", NULL,
			  "{\"stats_polling_interval_s\": 70000}"), CONFIG_EVALUE,
		    "between 0 and 65535");
	/* The memory may not shrink under the balloon's target. */
	expect_fail(patch(&cfg, "machine-config", NULL, "{\"mem_size_mib\": 16}"), CONFIG_EVALUE,
		    "smaller than the balloon device's target size (32 MiB)");

	assert_int_equal(put(&cfg, "logger", NULL, "{\"log_path\": \"/tmp/l\", \"level\": "
						  "\"debug\", \"show_level\": true}"), 0);
	assert_int_equal(cfg.logger.level, LOGGER_DEBUG);
	assert_string_equal(vm_config_level_name(cfg.logger.level), "Debug");
	assert_true(cfg.logger.show_level);
	assert_int_equal(put(&cfg, "logger", NULL, "{}"), 0);
	assert_int_equal(cfg.logger.level, LOGGER_INFO);
	assert_null(cfg.logger.log_path);
	expect_fail(put(&cfg, "logger", NULL, "{\"level\": \"Loud\"}"), CONFIG_EPARSE,
		    "unknown variant \"Loud\" for \"level\" in logger");

	expect_fail(put(&cfg, "metrics", NULL, "{}"), CONFIG_EPARSE,
		    "missing field \"metrics_path\" in metrics");
	assert_int_equal(put(&cfg, "metrics", NULL, "{\"metrics_path\": \"/tmp/m\"}"), 0);
	assert_string_equal(cfg.metrics.metrics_path, "/tmp/m");

	assert_int_equal(put(&cfg, "entropy", NULL, "{}"), 0);
	assert_true(cfg.entropy.set);
	assert_false(cfg.entropy.rate_limiter.set);
	expect_fail(put(&cfg, "entropy", NULL, "{\"rate_limiter\": 5}"), CONFIG_EPARSE,
		    "invalid type for \"rate_limiter\" in entropy: expected an object");
	vm_config_free(&cfg);
}

/* GET /vm/config loads back as a configuration file, to the same thing. */
static void test_round_trip(void **state)
{
	struct vm_config a, b;
	char *ja, *jb;

	(void)state;
	vm_config_init(&a);
	assert_int_equal(put(&a, "boot-source", NULL, "{\"kernel_image_path\": \"/k\", "
						    "\"boot_args\": \"a \\\"b\\\" c\"}"), 0);
	assert_int_equal(put(&a, "machine-config", NULL, "{\"vcpu_count\": 3, \"mem_size_mib\": 300, "
						       "\"huge_pages\": \"Transparent\"}"), 0);
	assert_int_equal(put(&a, "drives", "r", "{\"drive_id\": \"r\", \"path_on_host\": \"/r\", "
						"\"is_root_device\": true, \"partuuid\": \"abc-1\", "
						"\"rate_limiter\": {\"ops\": {\"size\": 1, "
						"\"refill_time\": 2}}}"), 0);
	assert_int_equal(put(&a, "network-interfaces", "n", "{\"iface_id\": \"n\", "
							    "\"host_dev_name\": \"tap9\", "
							    "\"guest_mac\": \"aa:bb:cc:dd:ee:ff\", "
							    "\"mtu\": 9000}"), 0);
	assert_int_equal(put(&a, "balloon", NULL, "{\"amount_mib\": 10, \"deflate_on_oom\": false}"),
			 0);
	assert_int_equal(put(&a, "logger", NULL, "{\"level\": \"Warning\", \"module\": \"api\"}"), 0);
	assert_int_equal(put(&a, "metrics", NULL, "{\"metrics_path\": \"/m\"}"), 0);
	assert_int_equal(put(&a, "entropy", NULL, "{\"rate_limiter\": {\"bandwidth\": {\"size\": 5, "
						 "\"refill_time\": 6}}}"), 0);
	ja = vm_config_to_json(&a);
	assert_non_null(ja);
	vm_config_init(&b);
	err[0] = '\0';
	if (vm_config_load_json(&b, ja, strlen(ja), err, sizeof(err)))
		fail_msg("%s does not load back: %s", ja, err);
	jb = vm_config_to_json(&b);
	assert_string_equal(ja, jb);
	free(ja);
	free(jb);
	vm_config_free(&a);
	vm_config_free(&b);
}

/* Firecracker's own example file (docs/getting-started.md), nulls and all. */
static const char fc_example[] =
	"{\n"
	"  \"boot-source\": {\n"
	"    \"kernel_image_path\": \"vmlinux.bin\",\n"
	"    \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off\",\n"
	"    \"initrd_path\": null\n"
	"  },\n"
	"  \"drives\": [\n"
	"    {\n"
	"      \"drive_id\": \"rootfs\",\n"
	"      \"partuuid\": null,\n"
	"      \"is_root_device\": true,\n"
	"      \"cache_type\": \"Unsafe\",\n"
	"      \"is_read_only\": false,\n"
	"      \"path_on_host\": \"bionic.rootfs.ext4\",\n"
	"      \"io_engine\": \"Sync\",\n"
	"      \"rate_limiter\": null,\n"
	"      \"socket\": null\n"
	"    }\n"
	"  ],\n"
	"  \"machine-config\": {\n"
	"    \"vcpu_count\": 2,\n"
	"    \"mem_size_mib\": 1024,\n"
	"    \"smt\": false,\n"
	"    \"track_dirty_pages\": false,\n"
	"    \"huge_pages\": \"None\"\n"
	"  },\n"
	"  \"cpu-config\": null,\n"
	"  \"balloon\": null,\n"
	"  \"network-interfaces\": [],\n"
	"  \"vsock\": null,\n"
	"  \"logger\": null,\n"
	"  \"metrics\": null,\n"
	"  \"mmds-config\": null,\n"
	"  \"entropy\": null\n"
	"}\n";

static int load(struct vm_config *cfg, const char *json)
{
	err[0] = '\0';
	return vm_config_load_json(cfg, json, strlen(json), err, sizeof(err));
}

static void test_config_file(void **state)
{
	struct vm_config cfg;
	char path[] = "/tmp/popek-test-config-XXXXXX", *before;
	int fd;

	(void)state;
	vm_config_init(&cfg);
	assert_int_equal(load(&cfg, fc_example), 0);
	assert_string_equal(cfg.boot_source.kernel_image_path, "vmlinux.bin");
	assert_int_equal(cfg.machine.vcpu_count, 2);
	assert_int_equal(cfg.machine.mem_size_mib, 1024);
	assert_int_equal(cfg.ndrives, 1);
	assert_string_equal(cfg.drives[0].path_on_host, "bionic.rootfs.ext4");
	assert_false(cfg.balloon.set);

	before = vm_config_to_json(&cfg);
	expect_fail(load(&cfg, "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"bogus\": 1}"),
		    CONFIG_EPARSE, "unknown section \"bogus\" in the configuration file");
	expect_fail(load(&cfg, "{\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/v\"}}"),
		    CONFIG_EVALUE, "popek does not support \"vsock\" yet");
	expect_fail(load(&cfg, "{\"drives\": {}}"), CONFIG_EPARSE,
		    "drives: expected an array, got an object");
	expect_fail(load(&cfg, "{\"drives\": [" DRIVE("a", "/a", "true") ", "
			       DRIVE("b", "/b", "true") "]}"),
		    CONFIG_EVALUE, "A root block device already exists!");
	expect_fail(load(&cfg, "{\"drives\": [" DRIVE("rootfs", "/a", "true") ", {\"drive_id\": \"b\"}]}"),
		    CONFIG_EPARSE, "in drives[1]");
	expect_fail(load(&cfg, "{\"machine-config\": {\"vcpu_count\": 1}}"), CONFIG_EPARSE,
		    "missing field \"mem_size_mib\" in machine-config");
	/* machine-config is applied before balloon, whatever the file's order. */
	expect_fail(load(&cfg, "{\"balloon\": {\"amount_mib\": 600, \"deflate_on_oom\": true}, "
			       "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 512}}"),
		    CONFIG_EVALUE, "more than the guest's memory (512 MiB)");
	expect_fail(load(&cfg, "[]"), CONFIG_EPARSE, "not a JSON object");
	expect_unchanged(&cfg, before);
	free(before);
	assert_int_equal(load(&cfg, "{\"balloon\": {\"amount_mib\": 300, \"deflate_on_oom\": true}, "
				   "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 512}}"),
			 0);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, fc_example, strlen(fc_example)), (int)strlen(fc_example));
	close(fd);
	vm_config_free(&cfg);
	vm_config_init(&cfg);
	assert_int_equal(vm_config_load_file(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.machine.vcpu_count, 2);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "{\"x\": 1}", 8), 8);
	close(fd);
	expect_fail(vm_config_load_file(&cfg, path, err, sizeof(err)), CONFIG_EPARSE, path);
	unlink(path);
	assert_true(vm_config_load_file(&cfg, path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "No such file"));
	assert_true(vm_config_load_file(&cfg, "/tmp", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not a regular file"));
	vm_config_free(&cfg);
}

static void test_check_id(void **state)
{
	(void)state;
	assert_int_equal(vm_config_check_id("rootfs_1", err, sizeof(err)), 0);
	assert_int_equal(vm_config_check_id("a.b", err, sizeof(err)), CONFIG_EVALUE);
	assert_int_equal(vm_config_check_id("a/b", err, sizeof(err)), CONFIG_EVALUE);
	assert_int_equal(vm_config_check_id("", err, sizeof(err)), CONFIG_EVALUE);
	assert_string_equal(err, "The ID cannot be empty.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_machine),
		cmocka_unit_test(test_json_syntax),
		cmocka_unit_test(test_boot_source),
		cmocka_unit_test(test_drives),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_balloon_logger_metrics_entropy),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_check_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
