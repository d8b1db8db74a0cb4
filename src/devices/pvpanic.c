/* pvpanic, matching QEMU's hw/misc/pvpanic.c handle_event(): a read
 * returns the events the device supports, a write is handled as an event
 * mask in which PANICKED wins over CRASH_LOADED and unknown bits are
 * reported once. QEMU's ISA device is one byte wide (impl.max_access_size
 * 1), so only the first byte of an access counts. */
#include "devices/pvpanic.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "vmm/vm.h"

struct pvpanic {
	struct vm_stopper stopper;
	atomic_bool unknown_logged;
	atomic_bool crash_loaded_logged;
};

static void pvpanic_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
	if (len)
		data[0] = PVPANIC_EVENTS;
}

static void pvpanic_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pvpanic *pv = opaque;
	uint8_t ev;

	(void)offset;
	if (!len)
		return;
	ev = data[0];
	if ((ev & ~PVPANIC_EVENTS) && !atomic_exchange(&pv->unknown_logged, true))
		pr_warn("pvpanic: unknown event 0x%02x ignored", ev);
	if (ev & PVPANIC_PANICKED) {
		pr_warn("pvpanic: the guest kernel panicked");
		vm_stopper_request(&pv->stopper, VM_STOP_PANIC, POPEK_EXIT_GUEST_PANIC);
		return;
	}
	/* The guest handles this crash itself (kexec into a kdump kernel):
	 * note it and let it run, as QEMU does (a GUEST_CRASHLOADED event). */
	if ((ev & PVPANIC_CRASH_LOADED) && !atomic_exchange(&pv->crash_loaded_logged, true))
		pr_warn("pvpanic: the guest kernel crashed; its crash kernel takes over");
}

const struct bus_ops pvpanic_bus_ops = {
	.read = pvpanic_read,
	.write = pvpanic_write,
};

struct pvpanic *pvpanic_create(const struct vm_stopper *stopper)
{
	struct pvpanic *pv = calloc(1, sizeof(*pv));

	if (!pv)
		return NULL;
	if (stopper)
		pv->stopper = *stopper;
	atomic_init(&pv->unknown_logged, false);
	atomic_init(&pv->crash_loaded_logged, false);
	return pv;
}

void pvpanic_destroy(struct pvpanic *pv)
{
	free(pv);
}
