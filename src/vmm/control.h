/* Driving the VMM from outside: Firecracker's configuration file and API
 * (through popek-api, src/api/rpc.h). The API's controls arrive on the RPC
 * thread; the VM is built and run on the main thread, as without an API. */
#ifndef POPEK_VMM_CONTROL_H
#define POPEK_VMM_CONTROL_H

#include <stddef.h>

#include "vmm/config.h"
#include "vmm/options.h"

/* A Firecracker configuration as popek run options. base holds the
 * options given on popek's own command line that still apply (-v, -q,
 * --on-reboot, --rng); the VM's own options come from cfg. Strings point
 * into cfg, which must outlive *out. Returns 0, or -EINVAL with one line
 * in err (no boot source, a drive popek cannot open as configured...). */
int run_options_from_config(const struct vm_config *cfg, const struct run_options *base,
			    struct run_options *out, char *err, size_t errlen);

/* popek run with --api-sock and/or --config-file: boots from the file at
 * once, or waits for InstanceStart on the API socket. Returns the exit
 * status. */
int vmm_serve(const struct run_options *o);

#endif
