/*
 * fuzz_config: the configuration file parser (lib/conf), through a
 * memory file so that no disk is involved.
 */
#define _GNU_SOURCE	/* memfd_create */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 fd = -1;
	static char	 path[64];
	struct config	 c;
	char		 err[1024];

	if (fd == -1) {
		if ((fd = memfd_create("fuzz-config", 0)) == -1)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) !=
	    (ssize_t)size)
		return 0;
	if (config_load(&c, path, err, sizeof(err)) == 0) {
		(void)config_check_serving(&c, err, sizeof(err));
		config_free(&c);
	}
	return 0;
}
