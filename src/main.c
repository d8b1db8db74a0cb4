/* popek: a virtual machine monitor on Linux/KVM. One process, one VM. */
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "vmm/builder.h"
#include "vmm/control.h"
#include "vmm/options.h"
#include "vmm/vm.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: popek COMMAND [OPTIONS]\n"
		"\n"
		"Commands:\n"
		"  run       boot a virtual machine (popek run --help)\n"
		"  cpuid [--cpus N]\n"
		"            print the CPUID table each vCPU of an N-vCPU machine gets\n"
		"  help      this text\n"
		"  version   the version of popek\n");
}

/* Parses the options after the command word. Returns -1 to go on, or the
 * exit status when --help/--version was printed or an option was wrong. */
static int parse_options(int argc, char **argv, struct run_options *opts)
{
	char err[256];

	switch (options_parse_run(argc, argv, opts, err, sizeof(err))) {
	case OPTIONS_EXIT_OK:
		return POPEK_EXIT_OK;
	case OPTIONS_ERROR:
		pr_err("%s", err);
		return POPEK_EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	if (opts->verbosity < 0)
		log_set_level(LOG_ERROR);
	else if (opts->verbosity > 0)
		log_set_level(opts->verbosity >= 2 ? LOG_DEBUG : LOG_INFO);
	return -1;
}

int main(int argc, char **argv)
{
	struct run_options opts;
	int status;

	if (argc < 2) {
		usage(stderr);
		return POPEK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return POPEK_EXIT_OK;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("popek %s\n", POPEK_VERSION);
		return POPEK_EXIT_OK;
	}
	if (strcmp(argv[1], "run") && strcmp(argv[1], "cpuid")) {
		pr_err("%s: unknown command (see popek --help)", argv[1]);
		return POPEK_EXIT_USAGE;
	}
	/* cpuid takes run's options, so --cpus means and checks the same. */
	status = parse_options(argc - 1, argv + 1, &opts);
	if (status >= 0)
		return status;
	if (!strcmp(argv[1], "cpuid"))
		return vmm_dump_cpuid(opts.cpus);
	if (opts.api_socket || opts.config_file)
		return vmm_serve(&opts);
	return vmm_run(&opts);
}
