#include "vmm/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "util/parse.h"

enum { OPT_CPUS = 256, OPT_MEMORY, OPT_KERNEL, OPT_INITRD, OPT_CMDLINE, OPT_ON_REBOOT, OPT_RNG, OPT_NO_RNG, OPT_DISK, OPT_NET, OPT_BALLOON, OPT_API_SOCKET, OPT_CONFIG_FILE, OPT_VERSION };

static const struct option run_longopts[] = {
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "balloon", optional_argument, NULL, OPT_BALLOON },
	{ "api-sock", required_argument, NULL, OPT_API_SOCKET },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-rng", no_argument, NULL, OPT_NO_RNG },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void options_print_run_help(void *file)
{
	fprintf(file,
		"Usage: popek run [OPTIONS]\n"
		"Boot a virtual machine on KVM; without --kernel, the built-in guest.\n"
		"\n"
		"  --cpus N          virtual CPUs (default 1, at most what KVM allows and %d)\n"
		"  --memory SIZE     guest RAM, with an optional K, M, G or T suffix (default 256M)\n"
		"  --kernel FILE     a Linux bzImage, an ELF kernel with a PVH entry note,\n"
		"                    or a multiboot kernel\n"
		"  --initrd FILE     an initial ramdisk (the first module for PVH and multiboot)\n"
		"  --cmdline STRING  the kernel command line\n"
		"  --on-reboot WHAT  exit (default) or restart when the guest resets\n"
		"  --disk PATH[,ro][,serial=ID][,cache=none]\n"
		"                    a virtio-blk disk on a raw image or block device (repeatable)\n"
		"  --net tap=NAME[,mac=xx:xx:xx:xx:xx:xx]\n"
		"                    a virtio-net interface on a tap device (repeatable)\n"
		"  --balloon[=SIZE]  a virtio-balloon device, starting SIZE inflated (default 0);\n"
		"                    change it at run time with PATCH /balloon on the API\n"
		"  --rng, --no-rng   a virtio-rng entropy device fed by getrandom() (default on)\n"
		"  --api-sock PATH   serve Firecracker's REST API on a Unix socket (also\n"
		"                    --api-socket); without --config-file the VM waits for\n"
		"                    PUT /actions InstanceStart\n"
		"  --config-file FILE  boot from Firecracker's JSON configuration\n"
		"  -v, --verbose     more log lines on stderr (repeat for debug)\n"
		"  -q, --quiet       only errors on stderr\n"
		"  -h, --help        this text\n"
		"      --version     the version of popek\n"
		"\n"
		"The serial console (COM1) is the terminal: Ctrl-A x quits.\n"
		"Exit status: the guest's through the debug-exit port ((v << 1) | 1), 0 on\n"
		"guest power-off or reset, 2 for bad options or files, 4 for a VMM or KVM\n"
		"failure, 6 when the guest triple-faults, 8 when stopped by a host signal,\n"
		"10 when the guest kernel panics.\n",
		OPTIONS_MAX_CPUS);
}

static int parse_cpus(const char *arg, struct run_options *o, char *err, size_t errlen)
{
	uint64_t v;
	int ret = parse_uint(arg, 1, OPTIONS_MAX_CPUS, &v);

	if (ret == -ERANGE) {
		snprintf(err, errlen, "--cpus %s: must be between 1 and %d", arg, OPTIONS_MAX_CPUS);
		return -1;
	}
	if (ret) {
		snprintf(err, errlen, "--cpus %s: not a number", arg);
		return -1;
	}
	o->cpus = (unsigned)v;
	return 0;
}

static int parse_memory(const char *arg, struct run_options *o, char *err, size_t errlen)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	if (ret == -ERANGE) {
		snprintf(err, errlen, "--memory %s: too large", arg);
		return -1;
	}
	if (ret) {
		snprintf(err, errlen, "--memory %s: not a size (examples: 512M, 4G)", arg);
		return -1;
	}
	if (v < (2ULL << 20)) {
		snprintf(err, errlen, "--memory %s: at least 2M is needed", arg);
		return -1;
	}
	if (v & 0xfff) {
		snprintf(err, errlen, "--memory %s: must be a multiple of 4K", arg);
		return -1;
	}
	o->memory = v;
	return 0;
}

enum options_result options_parse_run(int argc, char **argv, struct run_options *o,
				      char *err, size_t errlen)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->cpus = 1;
	o->memory = OPTIONS_DEFAULT_MEMORY;
	o->rng = true;
	err[0] = '\0';

	optind = 0;	/* full re-initialisation, so tests can parse repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vqh", run_longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CPUS:
			if (parse_cpus(optarg, o, err, errlen))
				return OPTIONS_ERROR;
			break;
		case OPT_MEMORY:
			if (parse_memory(optarg, o, err, errlen))
				return OPTIONS_ERROR;
			break;
		case OPT_KERNEL:
			if (!optarg[0]) {
				snprintf(err, errlen, "--kernel: empty file name");
				return OPTIONS_ERROR;
			}
			o->kernel = optarg;
			break;
		case OPT_INITRD:
			if (!optarg[0]) {
				snprintf(err, errlen, "--initrd: empty file name");
				return OPTIONS_ERROR;
			}
			o->initrd = optarg;
			break;
		case OPT_ON_REBOOT:
			if (!strcmp(optarg, "exit")) {
				o->on_reboot = ON_REBOOT_EXIT;
			} else if (!strcmp(optarg, "restart")) {
				o->on_reboot = ON_REBOOT_RESTART;
			} else {
				snprintf(err, errlen, "--on-reboot %s: must be exit or restart", optarg);
				return OPTIONS_ERROR;
			}
			break;
		case OPT_NET:
			if (o->nnets == OPTIONS_MAX_NETS) {
				snprintf(err, errlen, "--net: at most %d interfaces", OPTIONS_MAX_NETS);
				return OPTIONS_ERROR;
			}
			if (net_spec_parse(optarg, &o->nets[o->nnets], err, errlen))
				return OPTIONS_ERROR;
			o->nnets++;
			break;
		case OPT_BALLOON:
			o->balloon = true;
			o->balloon_target = 0;
			if (optarg && parse_size(optarg, &o->balloon_target)) {
				snprintf(err, errlen, "--balloon=%s: not a size (examples: 0, 512M)", optarg);
				return OPTIONS_ERROR;
			}
			break;
		case OPT_API_SOCKET:
		case OPT_CONFIG_FILE:
			if (!optarg[0]) {
				snprintf(err, errlen, "%s: empty path", argv[optind - 1]);
				return OPTIONS_ERROR;
			}
			if (c == OPT_API_SOCKET)
				o->api_socket = optarg;
			else
				o->config_file = optarg;
			break;
		case OPT_DISK:
			if (o->ndisks == OPTIONS_MAX_DISKS) {
				snprintf(err, errlen, "--disk: at most %d disks", OPTIONS_MAX_DISKS);
				return OPTIONS_ERROR;
			}
			if (disk_spec_parse(optarg, &o->disks[o->ndisks], err, errlen))
				return OPTIONS_ERROR;
			o->ndisks++;
			break;
		case OPT_RNG:
		case OPT_NO_RNG:
			o->rng = c == OPT_RNG;
			break;
		case OPT_CMDLINE:
			o->cmdline = optarg;
			break;
		case 'v':
			o->verbosity++;
			break;
		case 'q':
			o->verbosity = -1;
			break;
		case 'h':
			options_print_run_help(stdout);
			return OPTIONS_EXIT_OK;
		case OPT_VERSION:
			printf("popek %s\n", POPEK_VERSION);
			return OPTIONS_EXIT_OK;
		case ':':
			snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
			return OPTIONS_ERROR;
		default:
			if (optopt && optopt < 256)
				snprintf(err, errlen, "-%c: unknown option (see popek run --help)", optopt);
			else
				snprintf(err, errlen, "%s: unknown option (see popek run --help)",
					 argv[optind - 1]);
			return OPTIONS_ERROR;
		}
	}
	/* A configuration file describes the whole VM, as in Firecracker. */
	if (o->config_file && (o->kernel || o->initrd || o->cmdline || o->ndisks || o->nnets)) {
		snprintf(err, errlen, "--config-file describes the VM: drop --kernel, --initrd, "
			 "--cmdline, --disk and --net");
		return OPTIONS_ERROR;
	}
	if (optind < argc) {
		snprintf(err, errlen, "%s: unexpected argument (see popek run --help)", argv[optind]);
		return OPTIONS_ERROR;
	}
	return OPTIONS_RUN;
}
