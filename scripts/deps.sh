# Sourced by the other scripts: installs the Debian packages that are
# missing, in one apt-get run, and nothing when all are there.

# Building popek and its built-in guest.
POPEK_BUILD_PACKAGES="gcc libc6-dev binutils meson ninja-build pkg-config libcmocka-dev libmicrohttpd-dev libjansson-dev liburing-dev"
# Running every test: pytest, and the nested harness (QEMU's emulated
# AMD-V, a Debian kernel for L1, busybox for its initramfs).
POPEK_TEST_PACKAGES="python3-pytest qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
	util-linux procps acpica-tools linux-image-cloud-amd64 lz4"
# Benchmarks: callgrind counts instructions per exit; fio and iperf3 go
# into the guest of bench/virtio-io (with their libraries).
POPEK_BENCH_PACKAGES="valgrind qemu-system-x86 fio iperf3"

install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if ! $sudo apt-get update -q >/dev/null ||
	   ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null; then
		echo "error: could not install ${missing[*]} with apt-get" >&2
		return 1
	fi
}

# build DIR [meson options...]: configures once, then builds.
build_popek() {
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >/dev/null || ninja -C "$dir"
}
