/*
 * driver: a main() for the fuzz targets when they are not built with
 * libFuzzer (gcc, or a plain build): run LLVMFuzzerTestOneInput once on
 * each file named, and on each file of each directory named, so that
 * `make check` replays the corpus and every input that once crashed.
 * Arguments starting with '-' (libFuzzer's options, such as -runs=0)
 * are ignored, so the same command line serves both builds.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Run the target on the file at path; 0, or -1 when it cannot be read. */
static int
run_file(const char *path)
{
	FILE		*f;
	uint8_t		*buf;
	long		 n;
	size_t		 got;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	/* The input at its exact size, in its own allocation (for ASan). */
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct stat	 st;
	struct dirent	*d;
	DIR		*dir;
	char		 path[4096];
	int		 i, n = 0, rc = 0, w;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) == -1)
			continue;	/* no crashes recorded yet */
		if (!S_ISDIR(st.st_mode)) {
			rc |= run_file(argv[i]);
			n++;
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL) {
			perror(argv[i]);
			return 1;
		}
		while ((d = readdir(dir)) != NULL) {
			if (d->d_name[0] == '.')
				continue;
			w = snprintf(path, sizeof(path), "%s/%s", argv[i],
			    d->d_name);
			if (w < 0 || (size_t)w >= sizeof(path))
				continue;
			rc |= run_file(path);
			n++;
		}
		closedir(dir);
	}
	printf("%s: %d inputs replayed\n", argv[0], n);
	return rc == 0 ? 0 : 1;
}
