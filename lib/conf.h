/*
 * conf: `key = value` configuration files, driven by a program's table of
 * keys.  Owns the file format, defaults, range checks, the <PREFIX><KEY>
 * environment overrides, error messages naming file:line and the key, and
 * the secrecy of values (never printed, in errors or dumps).  The program
 * owns its struct and the table that says where each key goes in it.
 *
 * Format: one `key = value` per line; blank lines and lines whose first
 * non-blank character is `#` are ignored (a `#` later on a line is part
 * of the value, so passwords may contain it).  The value is the rest of
 * the line with surrounding blanks trimmed.  Unknown keys, duplicates,
 * bad numbers and out-of-range values are errors.
 */
#ifndef WX_CONF_H
#define WX_CONF_H

#include <stddef.h>
#include <stdio.h>

/* CONF_OBSOLETE: accepted and ignored, so an older file still loads. */
enum conf_type { CONF_STR, CONF_INT, CONF_BOOL, CONF_ENUM, CONF_RATIO,
	CONF_OBSOLETE };

/*
 * A key: its value goes at offset off of the program's struct, as a
 * char * (CONF_STR, malloc'd), a long long in min..max (CONF_INT), a
 * double in 0..1 (CONF_RATIO: "0.25") or an int (CONF_BOOL: 0/1;
 * CONF_ENUM: the index of the value in names, a NULL-ended list).
 */
struct conf_key {
	const char		*name;
	enum conf_type		 type;
	size_t			 off;
	const char		*def;
	long long		 min, max;
	int			 secret;
	const char *const	*names;
};

struct conf_schema {
	const struct conf_key	*keys;
	size_t			 nkeys;
	size_t			 size;		/* of the program's struct */
	const char		*env_prefix;	/* "WXAPP_": WXAPP_LOG_LEVEL */
};

/*
 * Defaults, then the file, then the environment, into c (size bytes); 0,
 * or -1 with err set (c freed).  *obsolete is the last obsolete key the
 * file or the environment set, or NULL.
 */
int	conf_load(const struct conf_schema *, void *c, const char *path,
	    const char **obsolete, char *err, size_t errlen);
/* Free the strings of c. */
void	conf_free(const struct conf_schema *, void *c);
/* Write every key = value, secrets masked, to f. */
void	conf_dump(const struct conf_schema *, const void *c, FILE *f);
/* Write every key name, one per line. */
void	conf_list_keys(const struct conf_schema *, FILE *f);

#endif
