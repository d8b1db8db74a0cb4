/* The command line of `popek run`. Parsing is pure (no KVM, no files), so
 * every error a user can make is unit-tested. */
#ifndef POPEK_VMM_OPTIONS_H
#define POPEK_VMM_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define OPTIONS_DEFAULT_MEMORY (256ULL << 20)
/* xAPIC IDs are 8 bits and the IOAPIC takes one: the MP table holds 254. */
#define OPTIONS_MAX_CPUS 254

struct run_options {
	unsigned cpus;
	uint64_t memory;          /* bytes */
	const char *kernel;       /* NULL: the built-in guest */
	const char *initrd;       /* NULL: none */
	const char *cmdline;      /* NULL: empty */
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
