/* The command line of `popek run`. Parsing is pure (no KVM, no files), so
 * every error a user can make is unit-tested. */
#ifndef POPEK_VMM_OPTIONS_H
#define POPEK_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/disk.h"
#include "virtio/net.h"

#define OPTIONS_DEFAULT_MEMORY (256ULL << 20)
/* xAPIC IDs are 8 bits and the IOAPIC takes one: the MP table holds 254. */
#define OPTIONS_MAX_CPUS 254
/* PCI slots 1..31 are shared by every device. */
#define OPTIONS_MAX_DISKS 16
#define OPTIONS_MAX_NETS 8

/* What a guest reset does (i8042, ACPI reset register, 0xCF9). */
enum on_reboot {
	ON_REBOOT_EXIT,       /* end the run with status 0 (default) */
	ON_REBOOT_RESTART,    /* boot the machine again in the same process */
};

struct run_options {
	unsigned cpus;
	uint64_t memory;          /* bytes */
	const char *kernel;       /* NULL: the built-in guest */
	const char *initrd;       /* NULL: none */
	const char *cmdline;      /* NULL: empty */
	enum on_reboot on_reboot;
	bool rng;                 /* virtio-rng (default on) */
	struct rate_limit_params rng_limit;  /* the API's entropy rate_limiter; zero: none */
	const char *api_socket;   /* --api-sock: serve Firecracker's API there */
	const char *config_file;  /* --config-file: Firecracker's JSON configuration */
	unsigned ndisks;          /* --disk, repeatable: checked, opened later */
	struct disk_spec disks[OPTIONS_MAX_DISKS];
	unsigned nnets;           /* --net, repeatable */
	struct net_spec nets[OPTIONS_MAX_NETS];
	bool balloon;             /* --balloon[=TARGET] */
	uint64_t balloon_target;  /* bytes taken from the guest at start */
	unsigned balloon_stats_interval; /* seconds; 0: no statistics */
	int verbosity;            /* -v / -q */
};

enum options_result {
	OPTIONS_RUN,          /* go on and run the VM */
	OPTIONS_EXIT_OK,      /* --help or --version was printed */
	OPTIONS_ERROR,        /* err holds one line naming the problem */
};

/* argv[0] is "run". Help and version text go to the FILE given. */
enum options_result options_parse_run(int argc, char **argv, struct run_options *o,
				      char *err, size_t errlen);

void options_print_run_help(void *file);

#endif
