/* popek: a virtual machine monitor on Linux/KVM. One process, one VM. */
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "vmm/builder.h"
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

static int cpuid_command(int argc, char **argv)
{
	struct run_options opts;
	char err[256];

	/* Same option parser as run, so --cpus means and checks the same. */
	switch (options_parse_run(argc, argv, &opts, err, sizeof(err))) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_ERROR:
		pr_err("%s", err);
		return POPEK_EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	return vmm_dump_cpuid(opts.cpus);
}

int main(int argc, char **argv)
{
	struct run_options opts;
	char err[256];

	if (argc < 2) {
		usage(stderr);
		return POPEK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("popek %s\n", POPEK_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "cpuid"))
		return cpuid_command(argc - 1, argv + 1);
	if (strcmp(argv[1], "run")) {
		pr_err("%s: unknown command (see popek --help)", argv[1]);
		return POPEK_EXIT_USAGE;
	}
	switch (options_parse_run(argc - 1, argv + 1, &opts, err, sizeof(err))) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_ERROR:
		pr_err("%s", err);
		return POPEK_EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	if (opts.verbosity < 0)
		log_set_level(LOG_ERROR);
	else
		log_set_level(opts.verbosity >= 2 ? LOG_DEBUG : opts.verbosity == 1 ? LOG_INFO : LOG_WARN);
	return vmm_run(&opts);
}
