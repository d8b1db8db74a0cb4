#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A configuration file is a few KiB; refuse to read anything absurd. */
#define CONFIG_FILE_MAX (1 << 20)

static const char *const level_names[] = {
	[LOGGER_ERROR] = "Error", [LOGGER_WARNING] = "Warning", [LOGGER_INFO] = "Info",
	[LOGGER_DEBUG] = "Debug", [LOGGER_TRACE] = "Trace",     [LOGGER_OFF] = "Off",
};

const char *vm_config_level_name(enum logger_level level)
{
	return level <= LOGGER_OFF ? level_names[level] : "Info";
}

static int fail(int ret, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = VM_CONFIG_DEFAULT_VCPUS;
	cfg->machine.mem_size_mib = VM_CONFIG_DEFAULT_MEM_MIB;
	cfg->logger.level = LOGGER_INFO;
}

static void drive_free(struct drive_config *d)
{
	free(d->path_on_host);
	free(d->partuuid);
}

static void boot_source_free(struct boot_source_config *b)
{
	free(b->kernel_image_path);
	free(b->initrd_path);
	free(b->boot_args);
}

static void logger_free(struct logger_config *l)
{
	free(l->log_path);
	free(l->module);
}

void vm_config_free(struct vm_config *cfg)
{
	unsigned i;

	if (!cfg)
		return;
	boot_source_free(&cfg->boot_source);
	for (i = 0; i < cfg->ndrives; i++)
		drive_free(&cfg->drives[i]);
	logger_free(&cfg->logger);
	free(cfg->metrics.metrics_path);
	memset(cfg, 0, sizeof(*cfg));
}

/* strdup that keeps NULL; *ok cleared on allocation failure. */
static char *dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

int vm_config_clone(struct vm_config *dst, const struct vm_config *src)
{
	bool ok = true;
	unsigned i;

	*dst = *src;
	dst->boot_source.kernel_image_path = dup_or_null(src->boot_source.kernel_image_path, &ok);
	dst->boot_source.initrd_path = dup_or_null(src->boot_source.initrd_path, &ok);
	dst->boot_source.boot_args = dup_or_null(src->boot_source.boot_args, &ok);
	for (i = 0; i < src->ndrives; i++) {
		dst->drives[i].path_on_host = dup_or_null(src->drives[i].path_on_host, &ok);
		dst->drives[i].partuuid = dup_or_null(src->drives[i].partuuid, &ok);
	}
	dst->logger.log_path = dup_or_null(src->logger.log_path, &ok);
	dst->logger.module = dup_or_null(src->logger.module, &ok);
	dst->metrics.metrics_path = dup_or_null(src->metrics.metrics_path, &ok);
	if (!ok) {
		vm_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Field tables. Each body is checked against its table before any value is
 * used: every member must be known (Firecracker's structs are all
 * serde(deny_unknown_fields)), of the right JSON type, and the required
 * ones present. null stands for an absent optional field, as serde's
 * Option<T> reads it (the configuration file in Firecracker's
 * getting-started guide writes "initrd_path": null).
 */
enum ftype { F_STR, F_BOOL, F_UINT, F_OBJ };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static const char *ftype_name(enum ftype t)
{
	static const char *const names[] = {
		[F_STR] = "a string", [F_BOOL] = "a boolean",
		[F_UINT] = "a non-negative integer", [F_OBJ] = "an object",
	};
	return names[t];
}

static bool type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case F_STR: return json_is_string(v);
	case F_BOOL: return json_is_boolean(v);
	case F_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case F_OBJ: return json_is_object(v);
	}
	return false;
}

static int check_fields(const json_t *obj, const char *what, const struct field *fields,
			char *err, size_t errlen)
{
	const struct field *f;
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(CONFIG_EPARSE, err, errlen, "%s: expected a JSON object, got %s",
			    what, json_type_name(obj));
	json_object_foreach((json_t *)obj, key, v) {
		for (f = fields; f->name; f++)
			if (!strcmp(f->name, key))
				break;
		if (!f->name) {
			char list[512];
			size_t n = 0;

			list[0] = '\0';
			for (f = fields; f->name && n < sizeof(list); f++)
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
						      f == fields ? "" : ", ", f->name);
			return fail(CONFIG_EPARSE, err, errlen,
				    "unknown field \"%.64s\" in %s, expected one of: %s", key, what,
				    list);
		}
		if (json_is_null(v) && !f->required)
			continue;
		if (!type_ok(v, f->type))
			return fail(CONFIG_EPARSE, err, errlen,
				    "invalid type for \"%s\" in %s: expected %s, got %s%s", key,
				    what, ftype_name(f->type), json_type_name(v),
				    json_is_integer(v) ? " below zero" : "");
	}
	for (f = fields; f->name; f++)
		if (f->required && !json_object_get(obj, f->name))
			return fail(CONFIG_EPARSE, err, errlen, "missing field \"%s\" in %s",
				    f->name, what);
	return 0;
}

/* Present and not null (types were checked by check_fields). */
static json_t *member(const json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return v && !json_is_null(v) ? v : NULL;
}

static bool has_any_member(const json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
		if (!json_is_null(v))
			return true;
	return false;
}

/* A string member that becomes a path-like value: non-empty, bounded. */
static int get_string(const json_t *obj, const char *name, const char *what, size_t max,
		      bool allow_empty, char **out, char *err, size_t errlen)
{
	json_t *v = member(obj, name);
	size_t len;

	*out = NULL;
	if (!v)
		return 0;
	len = json_string_length(v);
	if (!len && !allow_empty)
		return fail(CONFIG_EVALUE, err, errlen, "\"%s\" in %s must not be empty", name,
			    what);
	if (len > max)
		return fail(CONFIG_EVALUE, err, errlen,
			    "\"%s\" in %s is %zu bytes long, at most %zu are allowed", name, what,
			    len, max);
	*out = strdup(json_string_value(v));
	return *out ? 0 : fail(-ENOMEM, err, errlen, "out of memory");
}

static int get_uint(const json_t *obj, const char *name, const char *what, uint64_t min,
		    uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = member(obj, name);
	uint64_t x;

	if (!v)
		return 0;
	x = (uint64_t)json_integer_value(v);
	if (x < min || x > max)
		return fail(CONFIG_EVALUE, err, errlen,
			    "\"%s\" in %s must be between %llu and %llu, got %llu", name, what,
			    (unsigned long long)min, (unsigned long long)max,
			    (unsigned long long)x);
	*out = x;
	return 0;
}

static void get_bool(const json_t *obj, const char *name, bool *out)
{
	json_t *v = member(obj, name);

	if (v)
		*out = json_is_true(v);
}

/* An enumeration given as a string (serde's unit variants): -1 when the
 * member is absent, else the index in names[]. */
static int get_variant(const json_t *obj, const char *name, const char *what,
		       const char *const *names, unsigned n, bool nocase, int *out, char *err,
		       size_t errlen)
{
	json_t *v = member(obj, name);
	char list[256];
	size_t len = 0;
	unsigned i;

	*out = -1;
	if (!v)
		return 0;
	for (i = 0; i < n; i++) {
		if (nocase ? !strcasecmp(names[i], json_string_value(v)) :
			     !strcmp(names[i], json_string_value(v))) {
			*out = (int)i;
			return 0;
		}
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
					names[i]);
	}
	return fail(CONFIG_EPARSE, err, errlen,
		    "unknown variant \"%.64s\" for \"%s\" in %s, expected one of: %s",
		    json_string_value(v), name, what, list);
}

static const struct field bucket_fields[] = {
	{ "size", F_UINT, true },
	{ "one_time_burst", F_UINT, false },
	{ "refill_time", F_UINT, true },
	{ NULL, 0, false },
};

static const struct field limiter_fields[] = {
	{ "bandwidth", F_OBJ, false },
	{ "ops", F_OBJ, false },
	{ NULL, 0, false },
};

static int parse_bucket(const json_t *obj, const char *what, struct token_bucket_config *tb, char *err,
			size_t errlen)
{
	int ret = check_fields(obj, what, bucket_fields, err, errlen);

	if (ret)
		return ret;
	memset(tb, 0, sizeof(*tb));
	tb->set = true;
	tb->size = (uint64_t)json_integer_value(json_object_get(obj, "size"));
	tb->refill_time = (uint64_t)json_integer_value(json_object_get(obj, "refill_time"));
	if (member(obj, "one_time_burst"))
		tb->one_time_burst = (uint64_t)json_integer_value(member(obj, "one_time_burst"));
	return 0;
}

/* A RateLimiter member of obj (absent or null: unset). */
static int parse_limiter(const json_t *obj, const char *name, const char *what,
			 struct rate_limiter_config *rl, char *err, size_t errlen)
{
	json_t *v = member(obj, name), *b;
	char ctx[160];
	int ret;

	memset(rl, 0, sizeof(*rl));
	if (!v)
		return 0;
	snprintf(ctx, sizeof(ctx), "%s.%s", what, name);
	ret = check_fields(v, ctx, limiter_fields, err, errlen);
	if (ret)
		return ret;
	rl->set = true;
	b = member(v, "bandwidth");
	if (b) {
		snprintf(ctx, sizeof(ctx), "%s.%s.bandwidth", what, name);
		ret = parse_bucket(b, ctx, &rl->bandwidth, err, errlen);
		if (ret)
			return ret;
	}
	b = member(v, "ops");
	if (b) {
		snprintf(ctx, sizeof(ctx), "%s.%s.ops", what, name);
		ret = parse_bucket(b, ctx, &rl->ops, err, errlen);
	}
	return ret;
}

/* ---- boot-source (swagger: BootSource) ---- */

static const struct field boot_fields[] = {
	{ "kernel_image_path", F_STR, true },
	{ "initrd_path", F_STR, false },
	{ "boot_args", F_STR, false },
	{ NULL, 0, false },
};

static int apply_boot_source(struct vm_config *cfg, const json_t *body, const char *what,
			     char *err, size_t errlen)
{
	struct boot_source_config b = { .set = true };
	int ret;

	ret = check_fields(body, what, boot_fields, err, errlen);
	if (!ret)
		ret = get_string(body, "kernel_image_path", what, VM_CONFIG_MAX_PATH - 1, false,
				 &b.kernel_image_path, err, errlen);
	if (!ret)
		ret = get_string(body, "initrd_path", what, VM_CONFIG_MAX_PATH - 1, false,
				 &b.initrd_path, err, errlen);
	if (!ret)
		ret = get_string(body, "boot_args", what, VM_CONFIG_MAX_BOOT_ARGS, true,
				 &b.boot_args, err, errlen);
	if (ret) {
		boot_source_free(&b);
		return ret;
	}
	boot_source_free(&cfg->boot_source);
	cfg->boot_source = b;
	return 0;
}

/* ---- machine-config (swagger: MachineConfiguration) ---- */

static const struct field machine_put_fields[] = {
	{ "vcpu_count", F_UINT, true },
	{ "mem_size_mib", F_UINT, true },
	{ "smt", F_BOOL, false },
	{ "cpu_template", F_STR, false },
	{ "track_dirty_pages", F_BOOL, false },
	{ "huge_pages", F_STR, false },
	{ NULL, 0, false },
};

static const struct field machine_patch_fields[] = {
	{ "vcpu_count", F_UINT, false },
	{ "mem_size_mib", F_UINT, false },
	{ "smt", F_BOOL, false },
	{ "cpu_template", F_STR, false },
	{ "track_dirty_pages", F_BOOL, false },
	{ "huge_pages", F_STR, false },
	{ NULL, 0, false },
};

static int apply_machine(struct vm_config *cfg, const json_t *body, enum config_op op,
			 const char *what, char *err, size_t errlen)
{
	static const char *const templates[] = { "None", "C3", "T2", "T2S", "T2CL", "T2A",
						 "V1N1" };
	static const char *const huge[] = { "None", "Transparent", "2M" };
	struct machine_config m;
	uint64_t vcpus, mem;
	bool smt = false;
	int ret, v;

	ret = check_fields(body, what, op == CONFIG_PUT ? machine_put_fields :
							  machine_patch_fields, err, errlen);
	if (ret)
		return ret;
	if (op == CONFIG_PATCH && !has_any_member(body))
		return fail(CONFIG_EVALUE, err, errlen, "Empty PATCH request.");
	if (op == CONFIG_PUT) {
		/* PUT resets what it does not name (swagger: "All parameters
		 * that are optional and are not specified are set to their
		 * default values"). */
		memset(&m, 0, sizeof(m));
		m.huge_pages = HUGE_PAGES_NONE;
	} else {
		m = cfg->machine;
	}
	vcpus = m.vcpu_count;
	mem = m.mem_size_mib;
	if (member(body, "vcpu_count"))
		vcpus = (uint64_t)json_integer_value(member(body, "vcpu_count"));
	if (member(body, "mem_size_mib"))
		mem = (uint64_t)json_integer_value(member(body, "mem_size_mib"));
	get_bool(body, "smt", &smt);
	get_bool(body, "track_dirty_pages", &m.track_dirty_pages);
	ret = get_variant(body, "cpu_template", what, templates, 7, false, &v, err, errlen);
	if (ret)
		return ret;
	if (v > 0)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: CPU templates are not supported by popek "
			    "(cpu_template \"%s\"); use \"None\"", templates[v]);
	ret = get_variant(body, "huge_pages", what, huge, 3, false, &v, err, errlen);
	if (ret)
		return ret;
	if (v == 2)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: hugetlbfs pages (huge_pages \"2M\") are not "
			    "supported by popek; \"Transparent\" asks for transparent huge pages");
	if (v >= 0)
		m.huge_pages = (enum huge_pages)v;
	/* x86 Firecracker accepts smt on Intel hosts; popek's CPU topology is
	 * one core per vCPU (cpuid.c), so it refuses rather than pretend. */
	if (smt)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: enabling simultaneous multithreading (smt) is "
			    "not supported by popek");
	if (vcpus < 1 || vcpus > VM_CONFIG_MAX_VCPUS)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: the number of vCPUs must be between 1 and %d, "
			    "got %llu", VM_CONFIG_MAX_VCPUS, (unsigned long long)vcpus);
	/* popek needs 2 MiB at least (options.c: --memory). */
	if (mem < 2 || mem > VM_CONFIG_MAX_MEM_MIB)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: the memory size (MiB) must be between 2 and "
			    "%llu, got %llu", VM_CONFIG_MAX_MEM_MIB, (unsigned long long)mem);
	if (cfg->balloon.set && cfg->balloon.amount_mib > mem)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Machine config error: the memory size (%llu MiB) is smaller than the "
			    "balloon device's target size (%u MiB)", (unsigned long long)mem,
			    cfg->balloon.amount_mib);
	m.vcpu_count = (unsigned)vcpus;
	m.mem_size_mib = mem;
	cfg->machine = m;
	return 0;
}

/* ---- drives (swagger: Drive, PartialDrive) ---- */

static const struct field drive_put_fields[] = {
	{ "drive_id", F_STR, true },
	{ "path_on_host", F_STR, true },
	{ "is_root_device", F_BOOL, true },
	{ "is_read_only", F_BOOL, false },
	{ "partuuid", F_STR, false },
	{ "cache_type", F_STR, false },
	{ "io_engine", F_STR, false },
	{ "rate_limiter", F_OBJ, false },
	{ "socket", F_STR, false },
	{ NULL, 0, false },
};

static const struct field drive_patch_fields[] = {
	{ "drive_id", F_STR, true },
	{ "path_on_host", F_STR, false },
	{ "rate_limiter", F_OBJ, false },
	{ NULL, 0, false },
};

int vm_config_check_id(const char *id, char *err, size_t errlen)
{
	const char *p;

	/* Firecracker's checked_id() wording (parsed_request.rs). */
	if (!*id)
		return fail(CONFIG_EVALUE, err, errlen, "The ID cannot be empty.");
	for (p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return fail(CONFIG_EVALUE, err, errlen,
				    "API Resource IDs can only contain alphanumeric characters "
				    "and underscores.");
	if (p - id > VM_CONFIG_MAX_ID)
		return fail(CONFIG_EVALUE, err, errlen,
			    "API Resource IDs can be at most %d characters long.",
			    VM_CONFIG_MAX_ID);
	return 0;
}

/* The body's id against the path's (Firecracker: "The id from the path does
 * not match the id from the body!"); with no path id (configuration file),
 * the body's id is checked on its own. */
static int body_id(const json_t *body, const char *key, const char *path_id, const char **out,
		   char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(body, key));
	int ret = vm_config_check_id(id, err, errlen);

	if (ret)
		return ret;
	if (path_id && strcmp(path_id, id))
		return fail(CONFIG_EVALUE, err, errlen,
			    "The id from the path does not match the id from the body!");
	*out = id;
	return 0;
}

static int find_drive(const struct vm_config *cfg, const char *id)
{
	unsigned i;

	for (i = 0; i < cfg->ndrives; i++)
		if (!strcmp(cfg->drives[i].id, id))
			return (int)i;
	return -1;
}

const struct drive_config *vm_config_find_drive(const struct vm_config *cfg, const char *id)
{
	int i = find_drive(cfg, id);

	return i < 0 ? NULL : &cfg->drives[i];
}

/* partuuid ends up on the kernel command line (root=PARTUUID=...). */
static int check_partuuid(const char *s, const char *what, char *err, size_t errlen)
{
	const char *p;

	if (strlen(s) > 64)
		return fail(CONFIG_EVALUE, err, errlen, "\"partuuid\" in %s is too long", what);
	for (p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return fail(CONFIG_EVALUE, err, errlen,
				    "\"partuuid\" in %s may not hold spaces or control characters",
				    what);
	return 0;
}

static int apply_drive_put(struct vm_config *cfg, const json_t *body, const char *path_id,
			   const char *what, char *err, size_t errlen)
{
	static const char *const caches[] = { "Unsafe", "Writeback" };
	static const char *const engines[] = { "Sync", "Async" };
	struct drive_config d;
	const char *id;
	int ret, v, idx, root;
	unsigned i, pos;

	ret = check_fields(body, what, drive_put_fields, err, errlen);
	if (!ret)
		ret = body_id(body, "drive_id", path_id, &id, err, errlen);
	if (ret)
		return ret;
	if (member(body, "socket"))
		return fail(CONFIG_EVALUE, err, errlen,
			    "vhost-user block devices (\"socket\" in %s) are not supported by "
			    "popek",
			    what);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	get_bool(body, "is_root_device", &d.is_root_device);
	get_bool(body, "is_read_only", &d.is_read_only);
	ret = get_variant(body, "cache_type", what, caches, 2, false, &v, err, errlen);
	if (ret)
		return ret;
	d.cache_type = v < 0 ? CACHE_UNSAFE : (enum cache_type)v;
	ret = get_variant(body, "io_engine", what, engines, 2, false, &v, err, errlen);
	if (ret)
		return ret;
	d.io_engine = v < 0 ? IO_ENGINE_SYNC : (enum io_engine)v;
	ret = parse_limiter(body, "rate_limiter", what, &d.rate_limiter, err, errlen);
	if (ret)
		return ret;

	idx = find_drive(cfg, id);
	root = cfg->ndrives && cfg->drives[0].is_root_device ? 0 : -1;
	if (d.is_root_device && root == 0 && idx != 0)
		return fail(CONFIG_EVALUE, err, errlen, "A root block device already exists!");
	if (idx < 0 && cfg->ndrives == VM_CONFIG_MAX_DRIVES)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Too many drives: popek supports at most %d", VM_CONFIG_MAX_DRIVES);

	ret = get_string(body, "path_on_host", what, VM_CONFIG_MAX_PATH - 1, false,
			 &d.path_on_host, err, errlen);
	if (!ret)
		ret = get_string(body, "partuuid", what, 64, false, &d.partuuid, err, errlen);
	if (!ret && d.partuuid)
		ret = check_partuuid(d.partuuid, what, err, errlen);
	if (ret) {
		drive_free(&d);
		return ret;
	}

	/* Replace in place; a root device goes (or stays) first, as
	 * Firecracker's BlockBuilder orders them. */
	if (idx >= 0) {
		drive_free(&cfg->drives[idx]);
		for (i = (unsigned)idx; i + 1 < cfg->ndrives; i++)
			cfg->drives[i] = cfg->drives[i + 1];
		cfg->ndrives--;
	}
	pos = d.is_root_device ? 0 : idx >= 0 ? (unsigned)idx : cfg->ndrives;
	for (i = cfg->ndrives; i > pos; i--)
		cfg->drives[i] = cfg->drives[i - 1];
	cfg->drives[pos] = d;
	cfg->ndrives++;
	return 0;
}

/* A PATCH's rate limiter over the one in force: a bucket it names
 * replaces that bucket (size 0 turns it off), a bucket it omits stays, as
 * Firecracker's RateLimiterUpdate does. */
static void patch_limiter(struct rate_limiter_config *dst, const struct rate_limiter_config *p)
{
	if (!p->set)
		return;
	dst->set = true;
	if (p->bandwidth.set)
		dst->bandwidth = p->bandwidth;
	if (p->ops.set)
		dst->ops = p->ops;
}

static int apply_drive_patch(struct vm_config *cfg, const json_t *body, const char *path_id,
			     const char *what, char *err, size_t errlen)
{
	struct rate_limiter_config rl;
	char *path = NULL;
	const char *id;
	int ret, idx;

	ret = check_fields(body, what, drive_patch_fields, err, errlen);
	if (!ret)
		ret = body_id(body, "drive_id", path_id, &id, err, errlen);
	if (ret)
		return ret;
	idx = find_drive(cfg, id);
	if (idx < 0)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Unable to patch the block device: no drive with id \"%s\"", id);
	ret = parse_limiter(body, "rate_limiter", what, &rl, err, errlen);
	if (!ret)
		ret = get_string(body, "path_on_host", what, VM_CONFIG_MAX_PATH - 1, false, &path,
				 err, errlen);
	if (ret)
		return ret;
	if (path) {
		free(cfg->drives[idx].path_on_host);
		cfg->drives[idx].path_on_host = path;
	}
	patch_limiter(&cfg->drives[idx].rate_limiter, &rl);
	return 0;
}

/* ---- network-interfaces (swagger: NetworkInterface, PartialNetworkInterface) ---- */

static const struct field net_put_fields[] = {
	{ "iface_id", F_STR, true },
	{ "host_dev_name", F_STR, true },
	{ "guest_mac", F_STR, false },
	{ "mtu", F_UINT, false },
	{ "rx_rate_limiter", F_OBJ, false },
	{ "tx_rate_limiter", F_OBJ, false },
	{ NULL, 0, false },
};

static const struct field net_patch_fields[] = {
	{ "iface_id", F_STR, true },
	{ "rx_rate_limiter", F_OBJ, false },
	{ "tx_rate_limiter", F_OBJ, false },
	{ NULL, 0, false },
};

static int find_iface(const struct vm_config *cfg, const char *id)
{
	unsigned i;

	for (i = 0; i < cfg->nifaces; i++)
		if (!strcmp(cfg->ifaces[i].id, id))
			return (int)i;
	return -1;
}

const struct net_config *vm_config_find_iface(const struct vm_config *cfg, const char *id)
{
	int i = find_iface(cfg, id);

	return i < 0 ? NULL : &cfg->ifaces[i];
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "06:00:AC:10:00:02": six two-digit hex bytes, as Firecracker's MacAddr
 * parses them. */
static bool parse_mac(const char *s, uint8_t mac[6])
{
	int i, hi, lo;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 6; i++) {
		hi = hexval((unsigned char)s[3 * i]);
		lo = hexval((unsigned char)s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* What the kernel's dev_valid_name() accepts, so TUNSETIFF will not refuse
 * the name later with a less helpful EINVAL. */
static bool tap_name_ok(const char *s)
{
	const char *p;

	if (!*s || strlen(s) > VM_CONFIG_MAX_TAP_NAME || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p) ||
		    !isprint((unsigned char)*p))
			return false;
	return true;
}

static int apply_net_put(struct vm_config *cfg, const json_t *body, const char *path_id,
			 const char *what, char *err, size_t errlen)
{
	struct net_config n;
	const char *id, *s;
	uint64_t mtu = 0;
	unsigned i;
	int ret, idx;

	ret = check_fields(body, what, net_put_fields, err, errlen);
	if (!ret)
		ret = body_id(body, "iface_id", path_id, &id, err, errlen);
	if (ret)
		return ret;
	memset(&n, 0, sizeof(n));
	snprintf(n.id, sizeof(n.id), "%s", id);
	s = json_string_value(json_object_get(body, "host_dev_name"));
	if (!tap_name_ok(s))
		return fail(CONFIG_EVALUE, err, errlen,
			    "invalid host_dev_name \"%.64s\" in %s: a network interface name of "
			    "1 to %d characters without '/', ':' or spaces", s, what,
			    VM_CONFIG_MAX_TAP_NAME);
	snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", s);
	if (member(body, "guest_mac")) {
		s = json_string_value(member(body, "guest_mac"));
		if (!parse_mac(s, n.guest_mac))
			return fail(CONFIG_EVALUE, err, errlen,
				    "invalid guest_mac \"%.32s\" in %s: expected six hex bytes "
				    "separated by colons, e.g. 06:00:AC:10:00:02", s, what);
		n.has_guest_mac = true;
	}
	/* The swagger spec's bounds for VIRTIO_NET_F_MTU. */
	ret = get_uint(body, "mtu", what, 68, 65535, &mtu, err, errlen);
	if (!ret)
		ret = parse_limiter(body, "rx_rate_limiter", what, &n.rx_rate_limiter, err, errlen);
	if (!ret)
		ret = parse_limiter(body, "tx_rate_limiter", what, &n.tx_rate_limiter, err, errlen);
	if (ret)
		return ret;
	n.mtu = (uint16_t)mtu;

	idx = find_iface(cfg, id);
	for (i = 0; i < cfg->nifaces; i++) {
		if ((int)i == idx)
			continue;
		if (!strcmp(cfg->ifaces[i].host_dev_name, n.host_dev_name))
			return fail(CONFIG_EVALUE, err, errlen,
				    "The host device name is already in use: %s", n.host_dev_name);
		if (n.has_guest_mac && cfg->ifaces[i].has_guest_mac &&
		    !memcmp(cfg->ifaces[i].guest_mac, n.guest_mac, 6))
			return fail(CONFIG_EVALUE, err, errlen,
				    "The MAC address is already in use: %s",
				    json_string_value(member(body, "guest_mac")));
	}
	if (idx < 0) {
		if (cfg->nifaces == VM_CONFIG_MAX_IFACES)
			return fail(CONFIG_EVALUE, err, errlen,
				    "Too many network interfaces: popek supports at most %d",
				    VM_CONFIG_MAX_IFACES);
		idx = (int)cfg->nifaces++;
	}
	cfg->ifaces[idx] = n;
	return 0;
}

static int apply_net_patch(struct vm_config *cfg, const json_t *body, const char *path_id,
			   const char *what, char *err, size_t errlen)
{
	struct rate_limiter_config rx, tx;
	const char *id;
	int ret, idx;

	ret = check_fields(body, what, net_patch_fields, err, errlen);
	if (!ret)
		ret = body_id(body, "iface_id", path_id, &id, err, errlen);
	if (ret)
		return ret;
	idx = find_iface(cfg, id);
	if (idx < 0)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Unable to patch the network interface: no interface with id \"%s\"",
			    id);
	ret = parse_limiter(body, "rx_rate_limiter", what, &rx, err, errlen);
	if (!ret)
		ret = parse_limiter(body, "tx_rate_limiter", what, &tx, err, errlen);
	if (ret)
		return ret;
	patch_limiter(&cfg->ifaces[idx].rx_rate_limiter, &rx);
	patch_limiter(&cfg->ifaces[idx].tx_rate_limiter, &tx);
	return 0;
}

/* ---- balloon (swagger: Balloon, BalloonUpdate, BalloonStatsUpdate) ---- */

static const struct field balloon_put_fields[] = {
	{ "amount_mib", F_UINT, true },
	{ "deflate_on_oom", F_BOOL, true },
	{ "stats_polling_interval_s", F_UINT, false },
	{ "free_page_hinting", F_BOOL, false },
	{ "free_page_reporting", F_BOOL, false },
	{ NULL, 0, false },
};

static const struct field balloon_patch_fields[] = {
	{ "amount_mib", F_UINT, true },
	{ NULL, 0, false },
};

static const struct field balloon_stats_fields[] = {
	{ "stats_polling_interval_s", F_UINT, true },
	{ NULL, 0, false },
};

/* Firecracker's wording (BalloonConfigError::DeviceNotFound). */
#define NO_BALLOON "No balloon device found."

static int balloon_amount(const struct vm_config *cfg, const json_t *body, const char *what,
			  uint32_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;
	int ret = get_uint(body, "amount_mib", what, 0, UINT32_MAX, &v, err, errlen);

	if (ret)
		return ret;
	if (v > cfg->machine.mem_size_mib)
		return fail(CONFIG_EVALUE, err, errlen,
			    "Amount of pages requested is too large: amount_mib %llu is more than "
			    "the guest's memory (%llu MiB)", (unsigned long long)v,
			    (unsigned long long)cfg->machine.mem_size_mib);
	*out = (uint32_t)v;
	return 0;
}

static int apply_balloon(struct vm_config *cfg, const json_t *body, enum config_op op,
			 const char *what, char *err, size_t errlen)
{
	struct balloon_config b;
	uint64_t interval = 0;
	int ret;

	ret = check_fields(body, what, op == CONFIG_PUT ? balloon_put_fields :
							  balloon_patch_fields, err, errlen);
	if (ret)
		return ret;
	if (op == CONFIG_PATCH && !cfg->balloon.set)
		return fail(CONFIG_EVALUE, err, errlen, NO_BALLOON);
	b = op == CONFIG_PUT ? (struct balloon_config){ .set = true } : cfg->balloon;
	ret = balloon_amount(cfg, body, what, &b.amount_mib, err, errlen);
	if (ret || op == CONFIG_PATCH)
		goto out;
	get_bool(body, "deflate_on_oom", &b.deflate_on_oom);
	get_bool(body, "free_page_hinting", &b.free_page_hinting);
	get_bool(body, "free_page_reporting", &b.free_page_reporting);
	/* Firecracker keeps the interval in a u16. */
	ret = get_uint(body, "stats_polling_interval_s", what, 0, UINT16_MAX, &interval, err,
		       errlen);
	b.stats_polling_interval_s = (uint32_t)interval;
out:
	if (!ret)
		cfg->balloon = b;
	return ret;
}

static int apply_balloon_stats(struct vm_config *cfg, const json_t *body, const char *what,
			       char *err, size_t errlen)
{
	uint64_t interval = 0;
	int ret;

	ret = check_fields(body, what, balloon_stats_fields, err, errlen);
	if (ret)
		return ret;
	if (!cfg->balloon.set)
		return fail(CONFIG_EVALUE, err, errlen, NO_BALLOON);
	ret = get_uint(body, "stats_polling_interval_s", what, 0, UINT16_MAX, &interval, err,
		       errlen);
	if (ret)
		return ret;
	cfg->balloon.stats_polling_interval_s = (uint32_t)interval;
	return 0;
}

/* ---- logger, metrics, entropy ---- */

static const struct field logger_fields[] = {
	{ "log_path", F_STR, false },
	{ "level", F_STR, false },
	{ "show_level", F_BOOL, false },
	{ "show_log_origin", F_BOOL, false },
	{ "module", F_STR, false },
	{ NULL, 0, false },
};

static int apply_logger(struct vm_config *cfg, const json_t *body, const char *what, char *err,
			size_t errlen)
{
	struct logger_config l = { .set = true, .level = LOGGER_INFO };
	int ret, v = -1;

	ret = check_fields(body, what, logger_fields, err, errlen);
	if (!ret)
		ret = get_variant(body, "level", what, level_names, LOGGER_OFF + 1, true, &v, err,
				  errlen);
	if (ret)
		return ret;
	if (v >= 0)
		l.level = (enum logger_level)v;
	get_bool(body, "show_level", &l.show_level);
	get_bool(body, "show_log_origin", &l.show_log_origin);
	ret = get_string(body, "log_path", what, VM_CONFIG_MAX_PATH - 1, false, &l.log_path, err,
			 errlen);
	if (!ret)
		ret = get_string(body, "module", what, 256, false, &l.module, err, errlen);
	if (ret) {
		logger_free(&l);
		return ret;
	}
	logger_free(&cfg->logger);
	cfg->logger = l;
	return 0;
}

static const struct field metrics_fields[] = {
	{ "metrics_path", F_STR, true },
	{ NULL, 0, false },
};

static int apply_metrics(struct vm_config *cfg, const json_t *body, const char *what, char *err,
			 size_t errlen)
{
	char *path;
	int ret;

	ret = check_fields(body, what, metrics_fields, err, errlen);
	if (!ret)
		ret = get_string(body, "metrics_path", what, VM_CONFIG_MAX_PATH - 1, false, &path,
				 err, errlen);
	if (ret)
		return ret;
	free(cfg->metrics.metrics_path);
	cfg->metrics.metrics_path = path;
	cfg->metrics.set = true;
	return 0;
}

static const struct field entropy_fields[] = {
	{ "rate_limiter", F_OBJ, false },
	{ NULL, 0, false },
};

static int apply_entropy(struct vm_config *cfg, const json_t *body, const char *what, char *err,
			 size_t errlen)
{
	struct rate_limiter_config rl;
	int ret;

	ret = check_fields(body, what, entropy_fields, err, errlen);
	if (!ret)
		ret = parse_limiter(body, "rate_limiter", what, &rl, err, errlen);
	if (ret)
		return ret;
	cfg->entropy.set = true;
	cfg->entropy.rate_limiter = rl;
	return 0;
}

/* ---- dispatch ---- */

static int apply_section(struct vm_config *cfg, const char *section, const json_t *body,
			 enum config_op op, const char *id, const char *what, char *err,
			 size_t errlen)
{
	bool put = op == CONFIG_PUT;

	if (!strcmp(section, "boot-source") && put)
		return apply_boot_source(cfg, body, what, err, errlen);
	if (!strcmp(section, "machine-config"))
		return apply_machine(cfg, body, op, what, err, errlen);
	if (!strcmp(section, "drives"))
		return put ? apply_drive_put(cfg, body, id, what, err, errlen) :
			     apply_drive_patch(cfg, body, id, what, err, errlen);
	if (!strcmp(section, "network-interfaces"))
		return put ? apply_net_put(cfg, body, id, what, err, errlen) :
			     apply_net_patch(cfg, body, id, what, err, errlen);
	if (!strcmp(section, "balloon"))
		return apply_balloon(cfg, body, op, what, err, errlen);
	if (!strcmp(section, "balloon/statistics") && !put)
		return apply_balloon_stats(cfg, body, what, err, errlen);
	if (!strcmp(section, "logger") && put)
		return apply_logger(cfg, body, what, err, errlen);
	if (!strcmp(section, "metrics") && put)
		return apply_metrics(cfg, body, what, err, errlen);
	if (!strcmp(section, "entropy") && put)
		return apply_entropy(cfg, body, what, err, errlen);
	return fail(CONFIG_EVALUE, err, errlen, "%s %s cannot be configured", put ? "PUT" : "PATCH",
		    section);
}

static json_t *load(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	/* Duplicate keys are refused: which one would win is a guess (serde
	 * refuses them too: "duplicate field"). jansson already refuses
	 * invalid UTF-8, \u0000 in strings and trailing garbage. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		fail(CONFIG_EPARSE, err, errlen, "invalid JSON at line %d, column %d: %s",
		     jerr.line, jerr.column, jerr.text);
	return root;
}

int vm_config_apply_json(struct vm_config *cfg, const char *section, const char *body,
			 size_t len, enum config_op op, const char *id, char *err, size_t errlen)
{
	struct vm_config tmp;
	json_t *root;
	int ret;

	root = load(body, len, err, errlen);
	if (!root)
		return CONFIG_EPARSE;
	/* Sections work on a copy, so a body refused half-way leaves cfg as
	 * it was. */
	if (vm_config_clone(&tmp, cfg)) {
		json_decref(root);
		return fail(-ENOMEM, err, errlen, "out of memory");
	}
	ret = apply_section(&tmp, section, root, op, id, section, err, errlen);
	json_decref(root);
	if (ret) {
		vm_config_free(&tmp);
		return ret;
	}
	vm_config_free(cfg);
	*cfg = tmp;
	return 0;
}

/*
 * The configuration file: Firecracker's VmmConfig. Sections are applied in
 * an order where each one's checks see what they depend on (machine-config
 * before balloon, whose target must fit in memory). Sections popek does
 * not implement may be present as null (Firecracker's own example file
 * lists them so), and are refused otherwise.
 */
static const char *const file_sections[] = {
	"logger", "metrics", "machine-config", "boot-source", "drives", "network-interfaces",
	"balloon", "entropy",
};
static const char *const file_unsupported[] = {
	"cpu-config", "vsock", "mmds-config", "pmem", "memory-hotplug", "serial",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int load_array(struct vm_config *cfg, const char *section, const json_t *arr, char *err,
		      size_t errlen)
{
	char what[64];
	size_t i;
	json_t *v;
	int ret;

	if (!json_is_array(arr))
		return fail(CONFIG_EPARSE, err, errlen, "%s: expected an array, got %s", section,
			    json_type_name(arr));
	json_array_foreach(arr, i, v) {
		snprintf(what, sizeof(what), "%s[%zu]", section, i);
		ret = apply_section(cfg, section, v, CONFIG_PUT, NULL, what, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_config_load_json(struct vm_config *cfg, const char *json, size_t len, char *err,
			size_t errlen)
{
	struct vm_config tmp;
	const char *key;
	json_t *root, *v;
	size_t i;
	int ret = 0;

	root = load(json, len, err, errlen);
	if (!root)
		return CONFIG_EPARSE;
	if (!json_is_object(root)) {
		ret = fail(CONFIG_EPARSE, err, errlen,
			   "the configuration file holds %s, not a JSON object",
			   json_type_name(root));
		goto out_json;
	}
	json_object_foreach(root, key, v) {
		bool known = false;

		for (i = 0; i < ARRAY_SIZE(file_sections); i++)
			known |= !strcmp(key, file_sections[i]);
		for (i = 0; i < ARRAY_SIZE(file_unsupported) && !known; i++) {
			if (strcmp(key, file_unsupported[i]))
				continue;
			known = true;
			if (!json_is_null(v) && !(json_is_array(v) && !json_array_size(v))) {
				ret = fail(CONFIG_EVALUE, err, errlen,
					   "popek does not support \"%s\" yet", key);
				goto out_json;
			}
		}
		if (!known) {
			ret = fail(CONFIG_EPARSE, err, errlen,
				   "unknown section \"%.64s\" in the configuration file, expected "
				   "one of: boot-source, drives, machine-config, "
				   "network-interfaces, "
				   "balloon, logger, metrics, entropy", key);
			goto out_json;
		}
	}
	if (vm_config_clone(&tmp, cfg)) {
		ret = fail(-ENOMEM, err, errlen, "out of memory");
		goto out_json;
	}
	for (i = 0; i < ARRAY_SIZE(file_sections) && !ret; i++) {
		const char *s = file_sections[i];

		v = member(root, s);
		if (!v)
			continue;
		if (!strcmp(s, "drives") || !strcmp(s, "network-interfaces"))
			ret = load_array(&tmp, s, v, err, errlen);
		else
			ret = apply_section(&tmp, s, v, CONFIG_PUT, NULL, s, err, errlen);
	}
	if (ret) {
		vm_config_free(&tmp);
	} else {
		vm_config_free(cfg);
		*cfg = tmp;
	}
out_json:
	json_decref(root);
	return ret;
}

int vm_config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(-errno, err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(-EINVAL, err, errlen, "%s: not a regular file", path);
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return fail(-EFBIG, err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return fail(-ENOMEM, err, errlen, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(buf);
		return fail(-EIO, err, errlen, "%s: short read", path);
	}
	ret = vm_config_load_json(cfg, buf, got, err, errlen);
	free(buf);
	if (ret) {
		/* Name the file in front of the message. */
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s", path, msg);
	}
	return ret;
}

/* ---- serialisation (Firecracker's shapes, so the output loads back) ---- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *bucket_json(const struct token_bucket_config *tb)
{
	if (!tb->set)
		return json_null();
	return json_pack("{s:I,s:I,s:I}", "size", (json_int_t)tb->size, "one_time_burst",
			 (json_int_t)tb->one_time_burst, "refill_time",
			 (json_int_t)tb->refill_time);
}

static json_t *limiter_json(const struct rate_limiter_config *rl)
{
	if (!rl->set)
		return json_null();
	return json_pack("{s:o,s:o}", "bandwidth", bucket_json(&rl->bandwidth), "ops",
			 bucket_json(&rl->ops));
}

static json_t *machine_json(const struct machine_config *m)
{
	return json_pack("{s:i,s:I,s:b,s:b,s:s}", "vcpu_count", (int)m->vcpu_count,
			 "mem_size_mib", (json_int_t)m->mem_size_mib, "smt", 0,
			 "track_dirty_pages", m->track_dirty_pages, "huge_pages",
			 m->huge_pages == HUGE_PAGES_TRANSPARENT ? "Transparent" : "None");
}

static json_t *balloon_json(const struct balloon_config *b)
{
	if (!b->set)
		return json_null();
	return json_pack("{s:I,s:b,s:I,s:b,s:b}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_polling_interval_s, "free_page_hinting",
			 b->free_page_hinting, "free_page_reporting", b->free_page_reporting);
}

static json_t *drive_json(const struct drive_config *d)
{
	return json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:o,s:s}", "drive_id", d->id, "partuuid",
			 str_or_null(d->partuuid), "is_root_device", d->is_root_device,
			 "cache_type", d->cache_type == CACHE_WRITEBACK ? "Writeback" : "Unsafe",
			 "is_read_only", d->is_read_only, "path_on_host", d->path_on_host,
			 "rate_limiter", limiter_json(&d->rate_limiter), "io_engine",
			 d->io_engine == IO_ENGINE_ASYNC ? "Async" : "Sync");
}

static json_t *net_json(const struct net_config *n)
{
	char mac[18];
	json_t *o;

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->guest_mac[0],
		 n->guest_mac[1], n->guest_mac[2], n->guest_mac[3], n->guest_mac[4],
		 n->guest_mac[5]);
	o = json_pack("{s:s,s:s,s:o,s:o,s:o}", "iface_id", n->id, "host_dev_name",
		      n->host_dev_name, "guest_mac", n->has_guest_mac ? json_string(mac) :
									json_null(),
		      "rx_rate_limiter", limiter_json(&n->rx_rate_limiter), "tx_rate_limiter",
		      limiter_json(&n->tx_rate_limiter));
	if (o && n->mtu)
		json_object_set_new(o, "mtu", json_integer(n->mtu));
	return o;
}

static char *dump(json_t *o)
{
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *vm_config_to_json(const struct vm_config *cfg)
{
	const struct boot_source_config *b = &cfg->boot_source;
	const struct logger_config *l = &cfg->logger;
	json_t *root, *drives, *ifaces, *boot, *logger, *metrics, *entropy;
	unsigned i;

	drives = json_array();
	ifaces = json_array();
	for (i = 0; i < cfg->ndrives; i++)
		json_array_append_new(drives, drive_json(&cfg->drives[i]));
	for (i = 0; i < cfg->nifaces; i++)
		json_array_append_new(ifaces, net_json(&cfg->ifaces[i]));
	boot = b->set ? json_pack("{s:s,s:o,s:o}", "kernel_image_path", b->kernel_image_path,
				  "initrd_path", str_or_null(b->initrd_path), "boot_args",
				  str_or_null(b->boot_args)) :
			json_null();
	logger = l->set ? json_pack("{s:o,s:s,s:b,s:b,s:o}", "log_path", str_or_null(l->log_path),
				    "level", vm_config_level_name(l->level), "show_level",
				    l->show_level, "show_log_origin", l->show_log_origin, "module",
				    str_or_null(l->module)) :
			  json_null();
	metrics = cfg->metrics.set ? json_pack("{s:s}", "metrics_path", cfg->metrics.metrics_path) :
				     json_null();
	entropy = cfg->entropy.set ? json_pack("{s:o}", "rate_limiter",
					       limiter_json(&cfg->entropy.rate_limiter)) :
				     json_null();
	root = json_pack("{s:o,s:o,s:o,s:n,s:o,s:o,s:o,s:n,s:o,s:n,s:o}", "balloon",
			 balloon_json(&cfg->balloon), "drives", drives, "boot-source", boot,
			 "cpu-config", "logger", logger, "machine-config",
			 machine_json(&cfg->machine), "metrics", metrics, "mmds-config",
			 "network-interfaces", ifaces, "vsock", "entropy", entropy);
	return dump(root);
}

char *vm_config_machine_to_json(const struct vm_config *cfg)
{
	return dump(machine_json(&cfg->machine));
}

char *vm_config_balloon_to_json(const struct vm_config *cfg)
{
	return cfg->balloon.set ? dump(balloon_json(&cfg->balloon)) : NULL;
}
