/* The VM configuration that Firecracker's API and configuration file can
 * set, and its JSON form. Parsing is pure (no files are opened, no KVM), so
 * every mistake a client can make is unit-tested; the VMM checks that the
 * files named here can be used when the VM starts.
 *
 * The JSON bodies and their field names are Firecracker's (swagger spec:
 * src/firecracker/swagger/firecracker.yaml; configuration file:
 * docs/getting-started.md, "Configuring the microVM without sending API
 * requests"). Unknown fields are refused and named, as Firecracker's
 * serde(deny_unknown_fields) does; optional fields may be null. */
#ifndef POPEK_VMM_CONFIG_H
#define POPEK_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_CONFIG_MAX_ID        64      /* [A-Za-z0-9_], like Firecracker's checked_id() */
#define VM_CONFIG_MAX_PATH      4096    /* PATH_MAX, with its NUL */
#define VM_CONFIG_MAX_BOOT_ARGS 4095    /* the command-line page holds 4 KiB with the NUL */
#define VM_CONFIG_MAX_DRIVES    16
#define VM_CONFIG_MAX_IFACES    16
#define VM_CONFIG_MAX_VCPUS     254     /* xAPIC IDs: see OPTIONS_MAX_CPUS */
#define VM_CONFIG_MAX_MEM_MIB   (1ULL << 26)    /* 64 TiB: bytes fit in 64 bits with room */
#define VM_CONFIG_MAX_TAP_NAME  15      /* IFNAMSIZ - 1 */
/* Firecracker's defaults before PUT /machine-config (swagger: "vCPU count
 * (=1), memory size (=128 MiB)"). */
#define VM_CONFIG_DEFAULT_VCPUS   1
#define VM_CONFIG_DEFAULT_MEM_MIB 128

/* A token bucket (swagger: TokenBucket): size and refill_time required. */
struct token_bucket_config {
	bool set;
	uint64_t size;              /* tokens (bytes or operations) */
	uint64_t one_time_burst;    /* initial extra tokens, 0 when absent */
	uint64_t refill_time;       /* ms to refill `size` tokens */
};

/* Stored and reported back; popek's devices do not enforce them yet
 * (docs/api.md). */
struct rate_limiter_config {
	bool set;
	struct token_bucket_config bandwidth, ops;
};

struct boot_source_config {
	bool set;                   /* false: the VMM's own default (built-in guest) */
	char *kernel_image_path;
	char *initrd_path;          /* NULL: none */
	char *boot_args;            /* NULL: none */
};

enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_TRANSPARENT };

struct machine_config {
	unsigned vcpu_count;
	uint64_t mem_size_mib;
	bool track_dirty_pages;
	enum huge_pages huge_pages;
	/* smt is always false (refused otherwise); cpu_template only "None". */
};

enum cache_type { CACHE_UNSAFE, CACHE_WRITEBACK };
enum io_engine { IO_ENGINE_SYNC, IO_ENGINE_ASYNC };

struct drive_config {
	char id[VM_CONFIG_MAX_ID + 1];
	char *path_on_host;
	bool is_root_device;
	bool is_read_only;
	char *partuuid;             /* NULL: none */
	enum cache_type cache_type;
	enum io_engine io_engine;
	struct rate_limiter_config rate_limiter;
};

struct net_config {
	char id[VM_CONFIG_MAX_ID + 1];
	char host_dev_name[VM_CONFIG_MAX_TAP_NAME + 1];
	bool has_guest_mac;
	uint8_t guest_mac[6];
	uint16_t mtu;               /* 0: not advertised (VIRTIO_NET_F_MTU off) */
	struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
};

struct balloon_config {
	bool set;
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s;  /* 0: statistics disabled */
	bool free_page_hinting;
	bool free_page_reporting;
};

/* Firecracker's levels, case-insensitive on input. */
enum logger_level { LOGGER_ERROR, LOGGER_WARNING, LOGGER_INFO, LOGGER_DEBUG, LOGGER_TRACE,
		    LOGGER_OFF };

struct logger_config {
	bool set;
	char *log_path;             /* NULL: stays on stderr */
	enum logger_level level;
	bool show_level;
	bool show_log_origin;
	char *module;               /* NULL: no filter */
};

struct metrics_config {
	bool set;
	char *metrics_path;
};

struct entropy_config {
	bool set;
	struct rate_limiter_config rate_limiter;
};

struct vm_config {
	struct boot_source_config boot_source;
	struct machine_config machine;
	/* The root device, if any, comes first (as Firecracker orders them). */
	struct drive_config drives[VM_CONFIG_MAX_DRIVES];
	unsigned ndrives;
	struct net_config ifaces[VM_CONFIG_MAX_IFACES];
	unsigned nifaces;
	struct balloon_config balloon;
	struct logger_config logger;
	struct metrics_config metrics;
	struct entropy_config entropy;
};

enum config_op { CONFIG_PUT, CONFIG_PATCH };

/* Error classes: a body that does not deserialise (syntax, types, unknown
 * or missing fields), which Firecracker reports as "An error occurred when
 * deserializing the json body of a request: ...", and a well-formed body
 * whose values are refused. */
#define CONFIG_EPARSE (-1)
#define CONFIG_EVALUE (-2)

/* Defaults: 1 vCPU, 128 MiB, nothing else set. */
void vm_config_init(struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);
/* Deep copy into an uninitialised dst; -ENOMEM. */
int vm_config_clone(struct vm_config *dst, const struct vm_config *src);

/* Applies one API body to cfg: section is the endpoint's name
 * ("boot-source", "machine-config", "drives", "network-interfaces",
 * "balloon", "balloon/statistics", "logger", "metrics", "entropy"), id the
 * path's {drive_id} / {iface_id} (NULL otherwise). All or nothing: on error
 * cfg is unchanged and err holds one line. Returns 0, CONFIG_EPARSE or
 * CONFIG_EVALUE. PATCH on drives/network-interfaces updates the fields a
 * running VM can change (path_on_host, rate limiters); "does the VM allow
 * it now" is the caller's business. */
int vm_config_apply_json(struct vm_config *cfg, const char *section, const char *body,
			 size_t len, enum config_op op, const char *id, char *err, size_t errlen);

/* Loads Firecracker's configuration file (--config-file) into cfg, which
 * holds the defaults or an earlier configuration. Same return values;
 * -errno when the file cannot be read. */
int vm_config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* The same from a buffer (unit tests). */
int vm_config_load_json(struct vm_config *cfg, const char *json, size_t len, char *err,
			size_t errlen);

/* GET /vm/config: Firecracker's FullVmConfiguration, which the
 * configuration file reads back. Malloc'ed, NULL on allocation failure. */
char *vm_config_to_json(const struct vm_config *cfg);
/* GET /machine-config and GET /balloon bodies. */
char *vm_config_machine_to_json(const struct vm_config *cfg);
char *vm_config_balloon_to_json(const struct vm_config *cfg);

/* Checks an API resource ID (drive_id, iface_id) as Firecracker does, plus
 * popek's length limit; 0 or CONFIG_EVALUE with err set. */
int vm_config_check_id(const char *id, char *err, size_t errlen);

const struct drive_config *vm_config_find_drive(const struct vm_config *cfg, const char *id);
const struct net_config *vm_config_find_iface(const struct vm_config *cfg, const char *id);

const char *vm_config_level_name(enum logger_level level);

#endif
