/* The host side of a disk (src/virtio/disk.c): --disk parsing, opening
 * files (sizes, errors, locks between readers and writers), cache=none
 * alignment, io_uring operations, and a loop block device when the host
 * lets us make one. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/loop.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/disk.h"

static char dir[64];
static char err[512];

static void expect_err(const char *arg, const char *part)
{
	struct disk_spec s;

	err[0] = '\0';
	assert_int_equal(disk_spec_parse(arg, &s, err, sizeof(err)), -EINVAL);
	if (!strstr(err, part))
		fail_msg("--disk %s: error \"%s\" lacks \"%s\"", arg, err, part);
}

/* --- parsing --- */

static void test_parse_ok(void **state)
{
	struct disk_spec s;

	(void)state;
	assert_int_equal(disk_spec_parse("/a/b.img", &s, err, sizeof(err)), 0);
	assert_string_equal(s.path, "/a/b.img");
	assert_false(s.readonly);
	assert_false(s.direct);
	assert_string_equal(s.serial, "");

	assert_int_equal(disk_spec_parse("x.img,ro,serial=ABC-123_x,cache=none", &s, err, sizeof(err)), 0);
	assert_string_equal(s.path, "x.img");
	assert_true(s.readonly);
	assert_true(s.direct);
	assert_string_equal(s.serial, "ABC-123_x");

	assert_int_equal(disk_spec_parse("x.img,cache=writeback", &s, err, sizeof(err)), 0);
	assert_false(s.direct);

	/* Exactly 20 bytes: VIRTIO_BLK_ID_BYTES, no terminator on the wire. */
	assert_int_equal(disk_spec_parse("x,serial=01234567890123456789", &s, err, sizeof(err)), 0);
	assert_string_equal(s.serial, "01234567890123456789");

	/* ",," is a comma inside the path. */
	assert_int_equal(disk_spec_parse("a,,b.img,ro", &s, err, sizeof(err)), 0);
	assert_string_equal(s.path, "a,b.img");
	assert_true(s.readonly);
	assert_int_equal(disk_spec_parse("trailing,,", &s, err, sizeof(err)), 0);
	assert_string_equal(s.path, "trailing,");
}

static void test_parse_errors(void **state)
{
	char *longpath = malloc(DISK_PATH_MAX + 10);

	(void)state;
	expect_err("", "empty path");
	expect_err(",ro", "empty path");
	expect_err("x.img,rw", "unknown option 'rw'");
	expect_err("x.img,ro,bogus=1", "unknown option 'bogus'");
	expect_err("x.img,serial=012345678901234567890", "serial is 21 bytes, at most 20");
	expect_err("x.img,serial=", "serial needs a value");
	expect_err("x.img,serial", "serial needs a value");
	expect_err("x.img,serial=a b", "printable ASCII");
	expect_err("x.img,cache=unsafe", "cache must be none or writeback");
	expect_err("x.img,cache", "cache must be none or writeback");
	expect_err("x.img,ro=on", "ro takes no value");
	expect_err("x.img,ro,ro", "given twice");
	expect_err("x.img,ro,", "empty option");
	expect_err("x.img,=x", "empty option");

	memset(longpath, 'a', DISK_PATH_MAX + 5);
	longpath[DISK_PATH_MAX + 5] = '\0';
	expect_err(longpath, "path too long");
	free(longpath);
}

/* --- opening files --- */

static void make_file(const char *name, uint64_t size, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static struct disk *open_spec(const char *arg)
{
	struct disk_spec s;

	assert_int_equal(disk_spec_parse(arg, &s, err, sizeof(err)), 0);
	err[0] = '\0';
	return disk_open(&s, err, sizeof(err));
}

static void expect_open_err(const char *arg, const char *part)
{
	struct disk *d = open_spec(arg);

	assert_null(d);
	if (!strstr(err, part))
		fail_msg("--disk %s: error \"%s\" lacks \"%s\"", arg, err, part);
	assert_null(strchr(err, '\n'));
}

static void test_open_file(void **state)
{
	char path[128], arg[256];
	struct disk *d;

	(void)state;
	make_file("a.img", 1 << 20, path, sizeof(path));
	d = open_spec(path);
	assert_non_null(d);
	assert_false(d->readonly);
	assert_false(d->blockdev);
	assert_int_equal(d->size, 1 << 20);
	assert_int_equal(disk_sectors(d), 2048);
	assert_int_equal(d->logical_block_size, 512);
	assert_true(disk_event_fd(d) >= 0);
	disk_close(d);

	/* A partial last sector is not part of the disk. */
	make_file("odd.img", 4096 + 100, path, sizeof(path));
	d = open_spec(path);
	assert_non_null(d);
	assert_int_equal(disk_sectors(d), 8);
	disk_close(d);

	snprintf(arg, sizeof(arg), "%s,ro,serial=SN1", path);
	d = open_spec(arg);
	assert_non_null(d);
	assert_true(d->readonly);
	assert_string_equal(d->serial, "SN1");
	disk_close(d);
}

static void test_open_errors(void **state)
{
	char path[128], arg[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.img", dir);
	expect_open_err(path, "no such file");
	snprintf(arg, sizeof(arg), "%s,ro", path);
	expect_open_err(arg, "no such file");

	expect_open_err(dir, "is a directory");
	snprintf(arg, sizeof(arg), "%s,ro", dir);
	expect_open_err(arg, "is a directory");

	/* A FIFO: refused, and opening it must not wait for a writer. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(arg, sizeof(arg), "%s,ro", path);
	expect_open_err(arg, "not a regular file or block device");
	unlink(path);

	make_file("tiny.img", 100, path, sizeof(path));
	expect_open_err(path, "smaller than one 512-byte sector");
	make_file("empty.img", 0, path, sizeof(path));
	expect_open_err(path, "smaller than one 512-byte sector");

	expect_open_err("/dev/null", "not a regular file or block device");

	if (geteuid() != 0) {
		make_file("noperm.img", 4096, path, sizeof(path));
		chmod(path, 0);
		expect_open_err(path, "permission denied");
	}
}

static void test_locks(void **state)
{
	char path[128], ro[256];
	struct disk *a, *b;

	(void)state;
	make_file("lock.img", 65536, path, sizeof(path));
	snprintf(ro, sizeof(ro), "%s,ro", path);

	/* Readers share. */
	a = open_spec(ro);
	b = open_spec(ro);
	assert_non_null(a);
	assert_non_null(b);
	/* No writer while someone reads. */
	expect_open_err(path, "in use by another process (locked)");
	disk_close(a);
	disk_close(b);

	/* One writer, alone. */
	a = open_spec(path);
	assert_non_null(a);
	expect_open_err(path, "in use by another process (locked)");
	expect_open_err(ro, "in use by another process (locked)");
	disk_close(a);

	/* Released on close. */
	a = open_spec(path);
	assert_non_null(a);
	disk_close(a);
}

static void test_lock_other_process(void **state)
{
	char path[128];
	struct disk *a;
	int status;
	pid_t pid;

	(void)state;
	make_file("lock2.img", 65536, path, sizeof(path));
	a = open_spec(path);
	assert_non_null(a);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct disk_spec s;
		struct disk *d;

		disk_spec_parse(path, &s, err, sizeof(err));
		d = disk_open(&s, err, sizeof(err));
		_exit(!d && strstr(err, "(locked)") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	disk_close(a);
}

/* --- I/O --- */

static int wait_one(struct disk *d, void **tag)
{
	int res = 0;

	assert_int_equal(disk_wait(d, tag, &res), 1);
	return res;
}

static void test_aio(void **state)
{
	char path[128];
	struct disk *d;
	uint8_t a[4096], b[8192];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, 4096 } };
	struct iovec riov = { b, sizeof(b) };
	void *tag;
	uint64_t v;
	int fd;
	struct stat st;

	(void)state;
	make_file("aio.img", 1 << 20, path, sizeof(path));
	d = open_spec(path);
	assert_non_null(d);
	memset(a, 0x5a, sizeof(a));
	memset(b, 0xa5, sizeof(b));

	assert_int_equal(disk_prep_writev(d, iov, 2, 8192, false, (void *)1), 0);
	assert_int_equal(disk_submit(d), 0);
	assert_int_equal(wait_one(d, &tag), 8192);
	assert_ptr_equal(tag, (void *)1);
	assert_int_equal(d->inflight, 0);
	/* The eventfd saw the completion. */
	assert_int_equal(read(disk_event_fd(d), &v, sizeof(v)), sizeof(v));

	memset(b, 0, sizeof(b));
	assert_int_equal(disk_prep_readv(d, &riov, 1, 8192, (void *)2), 0);
	assert_int_equal(disk_prep_flush(d, (void *)3), 0);
	assert_int_equal(disk_submit(d), 0);
	for (int i = 0; i < 2; i++) {
		int res = wait_one(d, &tag);

		if (tag == (void *)2)
			assert_int_equal(res, 8192);
		else
			assert_int_equal(res, 0);
	}
	for (int i = 0; i < 8192; i++)
		assert_int_equal(b[i], i < 4096 ? 0x5a : 0xa5);
	assert_int_equal(disk_reap(d, &tag, &(int){ 0 }), 0);
	assert_int_equal(disk_wait(d, &tag, &(int){ 0 }), 0);

	/* fallocate: a hole reads back zeroes, the size stays. */
	assert_int_equal(disk_prep_fallocate(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					     8192, 4096, (void *)4), 0);
	assert_int_equal(disk_submit(d), 0);
	assert_int_equal(wait_one(d, &tag), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, 8192, 8192), 8192);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(b[i], i < 4096 ? 0 : 0xa5);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	close(fd);

	/* The depth bounds what can be queued. */
	for (int i = 0; i < DISK_QUEUE_DEPTH; i++)
		assert_int_equal(disk_prep_flush(d, NULL), 0);
	assert_int_equal(disk_prep_flush(d, NULL), -EBUSY);
	/* Closing waits for what is in flight. */
	disk_close(d);
}

static void test_direct(void **state)
{
	char path[128], arg[256];
	struct disk *d;
	void *buf = NULL;
	struct iovec iov;
	void *tag;

	(void)state;
	make_file("direct.img", 1 << 20, path, sizeof(path));
	snprintf(arg, sizeof(arg), "%s,cache=none", path);
	d = open_spec(arg);
	if (!d) {
		/* tmpfs before 6.6 has no O_DIRECT: the error says so. */
		assert_non_null(strstr(err, "O_DIRECT"));
		skip();
	}
	assert_true(d->direct);
	assert_true(d->dio_offset_align >= 1 && d->dio_offset_align <= 4096);
	assert_true(d->logical_block_size >= d->dio_offset_align);
	assert_int_equal(posix_memalign(&buf, 4096, 8192), 0);
	memset(buf, 0x77, 8192);

	iov.iov_base = buf;
	iov.iov_len = 4096;
	assert_true(disk_dio_aligned(d, 4096, &iov, 1));
	if (d->dio_offset_align > 1) {
		assert_false(disk_dio_aligned(d, 4096 + d->dio_offset_align / 2, &iov, 1));
		iov.iov_len = 4096 + d->dio_offset_align / 2;
		assert_false(disk_dio_aligned(d, 4096, &iov, 1));
	}
	if (d->dio_mem_align > 1) {
		iov.iov_base = (uint8_t *)buf + d->dio_mem_align / 2;
		iov.iov_len = 4096;
		assert_false(disk_dio_aligned(d, 4096, &iov, 1));
	}

	iov.iov_base = buf;
	iov.iov_len = 4096;
	assert_int_equal(disk_prep_writev(d, &iov, 1, 4096, true, NULL), 0);
	assert_int_equal(disk_submit(d), 0);
	assert_int_equal(wait_one(d, &tag), 4096);
	disk_close(d);
	free(buf);
}

/* --- changing the file (disk_replace) --- */

/* A file of size bytes, each byte v. */
static void make_filled(const char *name, uint64_t size, uint8_t v, char *path, size_t len)
{
	uint8_t *b = malloc(size);
	int fd;

	assert_non_null(b);
	memset(b, v, size);
	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, size), (ssize_t)size);
	close(fd);
	free(b);
}

/* The first byte at offset, read through the disk's ring. */
static uint8_t ring_byte(struct disk *d, uint64_t offset)
{
	uint8_t b[512];
	struct iovec iov = { b, sizeof(b) };
	void *tag;

	assert_int_equal(disk_prep_readv(d, &iov, 1, offset, NULL), 0);
	assert_int_equal(disk_submit(d), 0);
	assert_int_equal(wait_one(d, &tag), 512);
	return b[0];
}

static void expect_replace_err(struct disk *d, const char *path, const char *part)
{
	char old[128];
	uint64_t size = d->size;
	int fd = d->fd;

	snprintf(old, sizeof(old), "%s", d->path);
	err[0] = '\0';
	assert_true(disk_replace(d, path, err, sizeof(err)) < 0);
	if (!strstr(err, part) || strncmp(err, "disk", 4) != 0)
		fail_msg("replace by %s: error \"%s\" lacks \"%s\"", path, err, part);
	assert_null(strchr(err, '\n'));
	/* Unchanged. */
	assert_string_equal(d->path, old);
	assert_int_equal(d->fd, fd);
	assert_int_equal(d->size, size);
	assert_true(fcntl(fd, F_GETFD) >= 0);
}

static void test_replace(void **state)
{
	char a[128], b[128], link[160];
	struct disk *d;
	int fd;

	(void)state;
	make_filled("ra.img", 65536, 0xaa, a, sizeof(a));
	make_filled("rb.img", 3 * 65536, 0xbb, b, sizeof(b));
	d = open_spec(a);
	assert_non_null(d);
	assert_int_equal(ring_byte(d, 0), 0xaa);

	assert_int_equal(disk_replace(d, b, err, sizeof(err)), 0);
	assert_string_equal(d->path, b);
	assert_int_equal(d->size, 3 * 65536);
	assert_int_equal(disk_sectors(d), 3 * 128);
	assert_false(d->readonly);
	assert_true(disk_event_fd(d) >= 0);
	/* The same ring, on the new file. */
	assert_int_equal(ring_byte(d, 0), 0xbb);
	assert_int_equal(ring_byte(d, 2 * 65536), 0xbb);
	/* The old file's lock went with its fd; the new one is held. */
	fd = open(a, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	close(fd);
	expect_open_err(b, "in use by another process (locked)");

	/* The same file, grown: not opened again (our own lock would
	 * refuse it), just sized again. */
	fd = d->fd;
	assert_int_equal(truncate(b, 5 * 65536), 0);
	assert_int_equal(disk_replace(d, b, err, sizeof(err)), 0);
	assert_int_equal(d->fd, fd);
	assert_int_equal(d->size, 5 * 65536);
	assert_int_equal(ring_byte(d, 4 * 65536), 0);
	expect_open_err(b, "in use by another process (locked)");
	/* ... and shrunk, and under another name (a symlink). */
	assert_int_equal(truncate(b, 65536 + 100), 0);
	snprintf(link, sizeof(link), "%s/rb-link", dir);
	assert_int_equal(symlink(b, link), 0);
	assert_int_equal(disk_replace(d, link, err, sizeof(err)), 0);
	assert_int_equal(d->fd, fd);
	assert_int_equal(disk_sectors(d), 128);
	assert_string_equal(d->path, link);
	disk_close(d);
	unlink(link);
}

static void test_replace_errors(void **state)
{
	char a[128], b[128], path[128];
	struct disk *d;
	uint8_t buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	void *tag;
	int fd;

	(void)state;
	make_filled("ea.img", 65536, 0xaa, a, sizeof(a));
	d = open_spec(a);
	assert_non_null(d);

	snprintf(path, sizeof(path), "%s/missing.img", dir);
	expect_replace_err(d, path, "no such file");
	expect_replace_err(d, dir, "is a directory");
	expect_replace_err(d, "/dev/null", "not a regular file or block device");
	make_file("etiny.img", 100, path, sizeof(path));
	expect_replace_err(d, path, "smaller than one 512-byte sector");
	expect_replace_err(d, "", "empty path");

	/* Locked by another open file description (another popek). */
	make_filled("eb.img", 65536, 0xbb, b, sizeof(b));
	fd = open(b, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	expect_replace_err(d, b, "in use by another process (locked)");
	close(fd);

	/* Operations in flight: the caller must wait for them first. */
	assert_int_equal(disk_prep_readv(d, &iov, 1, 0, NULL), 0);
	assert_int_equal(disk_replace(d, b, err, sizeof(err)), -EBUSY);
	assert_int_equal(wait_one(d, &tag), 512);
	assert_int_equal(buf[0], 0xaa);
	assert_int_equal(ring_byte(d, 4096), 0xaa);

	/* The same file, now too small: refused, the old size kept. */
	assert_int_equal(truncate(a, 100), 0);
	expect_replace_err(d, a, "smaller than one 512-byte sector");
	assert_int_equal(truncate(a, 65536), 0);
	/* Still the same file (its data went with the truncation). */
	assert_int_equal(ring_byte(d, 4096), 0);

	/* And a good one is taken. */
	assert_int_equal(disk_replace(d, b, err, sizeof(err)), 0);
	assert_int_equal(ring_byte(d, 4096), 0xbb);
	disk_close(d);
}

static void test_replace_ro(void **state)
{
	char a[128], b[128], arg[256];
	struct disk *d, *other;

	(void)state;
	make_filled("roa.img", 65536, 0xaa, a, sizeof(a));
	make_filled("rob.img", 2 * 65536, 0xbb, b, sizeof(b));
	snprintf(arg, sizeof(arg), "%s,ro,serial=RO1", a);
	d = open_spec(arg);
	assert_non_null(d);
	assert_int_equal(disk_replace(d, b, err, sizeof(err)), 0);
	assert_true(d->readonly);
	assert_string_equal(d->serial, "RO1");
	assert_int_equal(fcntl(d->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(ring_byte(d, 65536), 0xbb);
	/* A shared lock: other readers yes, writers no. */
	snprintf(arg, sizeof(arg), "%s,ro", b);
	other = open_spec(arg);
	assert_non_null(other);
	disk_close(other);
	expect_open_err(b, "in use by another process (locked)");
	disk_close(d);
}

static void test_replace_direct(void **state)
{
	char a[128], b[128], arg[256];
	struct disk *d;

	(void)state;
	make_filled("da.img", 65536, 0xaa, a, sizeof(a));
	make_filled("db.img", 2 * 65536, 0xbb, b, sizeof(b));
	snprintf(arg, sizeof(arg), "%s,cache=none", a);
	d = open_spec(arg);
	if (!d) {
		assert_non_null(strstr(err, "O_DIRECT"));
		skip();
	}
	assert_int_equal(disk_replace(d, b, err, sizeof(err)), 0);
	assert_true(d->direct);
	assert_true(fcntl(d->fd, F_GETFL) & O_DIRECT);
	assert_true(d->dio_offset_align >= 1 && d->logical_block_size >= d->dio_offset_align);
	assert_int_equal(d->size, 2 * 65536);
	disk_close(d);
}

/* A loop device over a file: only where the host lets us (root, loop
 * driver); skipped otherwise. */
static void test_block_device(void **state)
{
	char path[128], loopdev[64], arg[128];
	struct disk *d, *d2;
	int ctl, nr, lfd, ffd;

	(void)state;
	make_file("loop.img", 4 << 20, path, sizeof(path));
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		skip();
	nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (nr < 0)
		skip();
	snprintf(loopdev, sizeof(loopdev), "/dev/loop%d", nr);
	lfd = open(loopdev, O_RDWR | O_CLOEXEC);
	ffd = open(path, O_RDWR | O_CLOEXEC);
	if (lfd < 0 || ffd < 0 || ioctl(lfd, LOOP_SET_FD, ffd) < 0) {
		if (lfd >= 0)
			close(lfd);
		if (ffd >= 0)
			close(ffd);
		skip();
	}
	close(ffd);

	d = open_spec(loopdev);
	if (d) {
		assert_true(d->blockdev);
		assert_int_equal(d->size, 4 << 20);
		assert_true(d->logical_block_size >= 512);
		/* O_EXCL and the lock: a second writer is refused. */
		d2 = open_spec(loopdev);
		assert_null(d2);
		/* disk_replace by the same device, also through another
		 * node: sized again, not opened again (O_EXCL would refuse). */
		{
			struct stat st;
			char node[128];
			int fd = d->fd;

			assert_int_equal(disk_replace(d, loopdev, err, sizeof(err)), 0);
			assert_int_equal(d->fd, fd);
			assert_int_equal(d->size, 4 << 20);
			snprintf(node, sizeof(node), "%s/loopnode", dir);
			assert_int_equal(stat(loopdev, &st), 0);
			if (mknod(node, S_IFBLK | 0600, st.st_rdev) == 0) {
				assert_int_equal(disk_replace(d, node, err, sizeof(err)), 0);
				assert_int_equal(d->fd, fd);
				assert_string_equal(d->path, node);
				unlink(node);
			}
		}
		disk_close(d);
		/* From a file to the device, and back. */
		make_file("toloop.img", 65536, arg, sizeof(arg));
		d = open_spec(arg);
		assert_non_null(d);
		assert_int_equal(disk_replace(d, loopdev, err, sizeof(err)), 0);
		assert_true(d->blockdev);
		assert_int_equal(d->size, 4 << 20);
		assert_int_equal(disk_replace(d, arg, err, sizeof(err)), 0);
		assert_false(d->blockdev);
		assert_int_equal(d->size, 65536);
		disk_close(d);
		snprintf(arg, sizeof(arg), "%s,ro", loopdev);
		d = open_spec(arg);
		assert_non_null(d);
		assert_true(d->readonly);
		disk_close(d);
	} else {
		print_message("loop device %s: %s\n", loopdev, err);
	}
	ioctl(lfd, LOOP_CLR_FD, 0);
	close(lfd);
	assert_non_null(d);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/popek-disk-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_open_file),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_lock_other_process),
		cmocka_unit_test(test_aio),
		cmocka_unit_test(test_direct),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_replace_errors),
		cmocka_unit_test(test_replace_ro),
		cmocka_unit_test(test_replace_direct),
		cmocka_unit_test(test_block_device),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
