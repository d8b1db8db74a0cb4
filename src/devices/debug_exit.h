/* QEMU's isa-debug-exit device: a guest write ends the VMM with status
 * (value << 1) | 1, so test guests can report pass/fail
 * (QEMU -device isa-debug-exit,iobase=0xf4,iosize=4).
 *
 * Register DEBUG_EXIT_NR_PORTS ports at DEBUG_EXIT_BASE with
 * debug_exit_bus_ops; the opaque is a struct debug_exit. */
#ifndef POPEK_DEVICES_DEBUG_EXIT_H
#define POPEK_DEVICES_DEBUG_EXIT_H

#include "vmm/bus.h"
#include "vmm/device.h"

#define DEBUG_EXIT_BASE 0xf4
#define DEBUG_EXIT_NR_PORTS 4

struct debug_exit;

/* Copies *stopper. Returns NULL on allocation failure. */
struct debug_exit *debug_exit_create(const struct vm_stopper *stopper);
void debug_exit_destroy(struct debug_exit *dev);

/* A write of v (1, 2 or 4 bytes, little-endian; an 8-byte write uses its
 * low 4 bytes, as QEMU accepts at most 4) at any offset requests
 * VM_STOP_DEBUG_EXIT with status (int)((v << 1) | 1), computed in 32
 * bits; the process exit status keeps its low 8 bits. Reads return 0. */
extern const struct bus_ops debug_exit_bus_ops;

#endif
