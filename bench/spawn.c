// SPDX-License-Identifier: MIT
/*
 * bench/spawn: runs a command and writes its measurements to a file.
 *
 *     spawn OUT CMD [ARG...]
 *
 * writes "start_ns end_ns pid utime_us stime_us maxrss_kib status" (the
 * CLOCK_MONOTONIC times around fork and wait4, the child's rusage) to OUT
 * and exits with the child's exit status (128 + signal if killed).
 *
 * Why not spawn from Python directly: Linux carries ru_maxrss across
 * execve (exec_mmap() keeps the old mm's high-water mark), so a VMM spawned
 * by a ~15 MiB Python process reports at least ~15 MiB of peak RSS. Forked
 * from this small process instead, the floor is this process's size.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long start, end;
	int status;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: spawn OUT CMD [ARG...]\n");
		return 127;
	}
	out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 127;
	}
	start = now_ns();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 127;
	}
	end = now_ns();
	fprintf(out, "%lld %lld %d %lld %lld %ld %d\n", start, end, (int)pid,
		(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
		ru.ru_maxrss, status);
	fclose(out);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
