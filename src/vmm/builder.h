/* Assembles a machine from the run options (KVM, RAM, devices, kernel,
 * tables, vCPUs), runs it until it stops, and tears it down. */
#ifndef POPEK_VMM_BUILDER_H
#define POPEK_VMM_BUILDER_H

#include "vmm/options.h"

/* Returns the process exit status (see enum popek_exit_status). */
int vmm_run(const struct run_options *opts);

#endif
