/* Linux tap devices, the host side of virtio-net (src/virtio/net.c).
 *
 * A tap is opened through /dev/net/tun with TUNSETIFF (IFF_TAP: Ethernet
 * frames; IFF_NO_PI: no packet-information prefix; IFF_VNET_HDR: every
 * frame carries a struct virtio_net_hdr, Documentation/networking/tuntap.rst).
 * TUNSETIFF creates the interface when it does not exist (that needs
 * CAP_NET_ADMIN) or attaches to an existing one the caller may use (its
 * owner/group, `ip tuntap add NAME mode tap user USER vnet_hdr`). The
 * vnet header size is set to 12 bytes (TUNSETVNETHDRSZ), the size of the
 * virtio 1.x header with num_buffers (virtio 1.2 §5.1.6), so frames pass
 * between the guest's rings and the tap without rewriting the header.
 *
 * TUNSETOFFLOAD says which offloads the kernel may use in frames it hands
 * us (partial checksums, TSO, UFO): they must match what the guest driver
 * accepted (VIRTIO_NET_F_GUEST_*), so net.c sets them after feature
 * negotiation and clears them on reset. Frames we write may use any
 * offload the kernel understands (it checks each header).
 *
 * The file descriptor is non-blocking and close-on-exec.
 */
#ifndef POPEK_VIRTIO_TAP_H
#define POPEK_VIRTIO_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

/* The vnet header popek uses on the tap: struct virtio_net_hdr with
 * num_buffers (virtio 1.2 §5.1.6). */
#define TAP_VNET_HDR_LEN 12

struct tap {
	int fd;
	char name[IFNAMSIZ];       /* as the kernel returned it */
	/* TUN_F_* offloads the tap accepted when probed (TUN_F_CSUM,
	 * TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_UFO). */
	unsigned offloads;
	/* TUNSETOFFLOAD; tests substitute it. Returns 0 or -errno. */
	int (*set_offload)(struct tap *tap, unsigned flags);
};

/* Opens (creating if needed) tap NAME. Returns 0 with tap filled, or
 * -errno with err holding one line: "--net tap=NAME: cannot open
 * /dev/net/tun: ...", "--net tap=NAME: cannot create tap NAME: Operation
 * not permitted (...)". */
int tap_open(const char *name, struct tap *tap, char *err, size_t errlen);
/* The same with another clone device path (tests). */
int tap_open_path(const char *path, const char *name, struct tap *tap, char *err, size_t errlen);

/* TUNSETOFFLOAD with flags (a subset of tap->offloads); through
 * tap->set_offload. Returns 0 or -errno. */
int tap_set_offload(struct tap *tap, unsigned flags);

/* The real TUNSETOFFLOAD ioctl (the default set_offload). */
int tap_ioctl_set_offload(struct tap *tap, unsigned flags);

/* Closes the fd (a non-persistent tap then disappears). */
void tap_close(struct tap *tap);

/* Whether name is a valid interface name (the kernel's dev_valid_name):
 * 1 to IFNAMSIZ - 1 bytes, not "." or "..", no '/', ':' or whitespace. */
bool tap_name_valid(const char *name);

#endif
