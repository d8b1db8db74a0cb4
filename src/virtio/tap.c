#include "virtio/tap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

#define TUN_PATH "/dev/net/tun"

/* What the tap is asked for when probed, widest first: the kernel refuses
 * (EINVAL) any flag it does not know (tun.c set_offload), so a kernel
 * without UFO support still gets checksum and TSO offloads. */
static const unsigned offload_probes[] = {
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO,
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
	TUN_F_CSUM,
};

bool tap_name_valid(const char *name)
{
	size_t len = strnlen(name, IFNAMSIZ);

	if (len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == ':' || isspace((unsigned char)name[i]))
			return false;
	return true;
}

int tap_ioctl_set_offload(struct tap *tap, unsigned flags)
{
	return ioctl(tap->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

int tap_set_offload(struct tap *tap, unsigned flags)
{
	return tap->set_offload(tap, flags);
}

int tap_open_path(const char *path, const char *name, struct tap *tap, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr_len = TAP_VNET_HDR_LEN, ret;

	memset(tap, 0, sizeof(*tap));
	tap->fd = -1;
	tap->set_offload = tap_ioctl_set_offload;
	if (!tap_name_valid(name)) {
		snprintf(err, errlen, "--net tap=%s: not a valid interface name (1 to %d characters, no '/', ':' or spaces)",
			 name, IFNAMSIZ - 1);
		return -EINVAL;
	}
	/* Non-blocking: the device worker reads until EAGAIN and never
	 * waits on the tap. */
	tap->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "--net tap=%s: cannot open %s: %s", name, path, strerror(errno));
		return ret;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		if (errno == EPERM)
			snprintf(err, errlen, "--net tap=%s: cannot create tap %s: %s (needs CAP_NET_ADMIN, or create it first: ip tuntap add %s mode tap user USER vnet_hdr)",
				 name, name, strerror(errno), name);
		else if (errno == EBUSY)
			snprintf(err, errlen, "--net tap=%s: cannot attach to tap %s: %s (in use by another process?)",
				 name, name, strerror(errno));
		else if (errno == EINVAL)
			snprintf(err, errlen, "--net tap=%s: cannot create tap %s: %s (an interface of another kind, or a multi-queue tap, has that name?)",
				 name, name, strerror(errno));
		else
			snprintf(err, errlen, "--net tap=%s: cannot create tap %s: %s", name, name, strerror(errno));
		goto fail;
	}
	snprintf(tap->name, sizeof(tap->name), "%.*s", IFNAMSIZ - 1, ifr.ifr_name);
	/* The 12-byte header carries num_buffers (virtio 1.2 §5.1.6): the
	 * kernel writes the first 10 bytes and leaves the rest for us. */
	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		ret = -errno;
		snprintf(err, errlen, "--net tap=%s: TUNSETVNETHDRSZ: %s", name, strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < sizeof(offload_probes) / sizeof(offload_probes[0]); i++) {
		if (tap_ioctl_set_offload(tap, offload_probes[i]) == 0) {
			tap->offloads = offload_probes[i];
			break;
		}
	}
	/* Nothing negotiated yet: the kernel must hand us fully formed,
	 * checksummed frames until the driver accepts offloads. */
	ret = tap_ioctl_set_offload(tap, 0);
	if (ret) {
		snprintf(err, errlen, "--net tap=%s: TUNSETOFFLOAD: %s", name, strerror(-ret));
		goto fail;
	}
	pr_debug("tap %s: offloads %#x", tap->name, tap->offloads);
	return 0;
fail:
	close(tap->fd);
	tap->fd = -1;
	return ret;
}

int tap_open(const char *name, struct tap *tap, char *err, size_t errlen)
{
	return tap_open_path(TUN_PATH, name, tap, err, errlen);
}

void tap_close(struct tap *tap)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
}
