/*
 * conf: table-driven `key = value` parsing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

/* What a load is filling. */
struct conf_load {
	const struct conf_schema	*s;
	void				*c;
	const char			*obsolete;
};

static const struct conf_key *
key_find(const struct conf_schema *s, const char *name)
{
	size_t	i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].name, name) == 0)
			return &s->keys[i];
	return NULL;
}

/* Store value into the field of k; on a bad value, *why says what is wrong. */
static int
key_set(struct conf_load *ld, const struct conf_key *k, const char *value,
    char *why, size_t whylen)
{
	char		*field = (char *)ld->c + k->off;
	const char	*errstr;
	long long	 n;
	double		 d;
	size_t		 i;
	char		*dup, *end;
	int		 r;

	switch (k->type) {
	case CONF_OBSOLETE:
		ld->obsolete = k->name;
		return 0;
	case CONF_STR:
		if ((dup = strdup(value)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	case CONF_INT:
		if (util_strtonum(value, k->min, k->max, &n, &errstr) == -1) {
			r = snprintf(why, whylen, "%s (allowed %lld..%lld)",
			    errstr, k->min, k->max);
			if (r < 0 || (size_t)r >= whylen)
				snprintf(why, whylen, "%s", errstr);
			return -1;
		}
		*(long long *)field = n;
		return 0;
	case CONF_RATIO:
		errno = 0;
		d = strtod(value, &end);
		if (value[0] == '\0' || isspace((unsigned char)value[0]) ||
		    *end != '\0' || errno != 0 || !(d >= 0 && d <= 1)) {
			snprintf(why, whylen, "must be a number from 0 to 1");
			return -1;
		}
		*(double *)field = d;
		return 0;
	case CONF_BOOL:
		if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 ||
		    strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(int *)field = 1;
		else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			*(int *)field = 0;
		else {
			snprintf(why, whylen, "must be on or off");
			return -1;
		}
		return 0;
	case CONF_ENUM:
		for (i = 0; k->names[i] != NULL; i++)
			if (strcmp(value, k->names[i]) == 0) {
				*(int *)field = (int)i;
				return 0;
			}
		r = snprintf(why, whylen, "must be one of");
		for (i = 0; k->names[i] != NULL && r > 0 && (size_t)r < whylen;
		    i++)
			r += snprintf(why + r, whylen - (size_t)r, "%s %s",
			    i > 0 ? "," : "", k->names[i]);
		return -1;
	}
	snprintf(why, whylen, "unknown type");
	return -1;
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Parse the file at path; 0, or -1 with err naming path:line. */
static int
parse_file(struct conf_load *ld, const char *path, char *err, size_t errlen)
{
	FILE			*f;
	char			 line[4096], why[128], *p, *eq, *name, *value;
	unsigned char		*seen;
	const struct conf_key	*k;
	int			 lineno = 0, rc = -1;

	if ((seen = calloc(ld->s->nkeys, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(seen);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected `key = value`",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		name = trim(p);
		value = trim(eq + 1);
		if ((k = key_find(ld->s, name)) == NULL) {
			snprintf(err, errlen, "%s:%d: unknown key `%.64s`",
			    path, lineno, name);
			goto fail;
		}
		if (seen[k - ld->s->keys]++) {
			snprintf(err, errlen, "%s:%d: %s: duplicate key",
			    path, lineno, k->name);
			goto fail;
		}
		if (key_set(ld, k, value, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d: %s: value %s",
			    path, lineno, k->name, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	rc = 0;
fail:
	fclose(f);
	free(seen);
	return rc;
}

/* Apply <PREFIX><KEY> variables; 0, or -1 with err naming the variable. */
static int
parse_env(struct conf_load *ld, char *err, size_t errlen)
{
	const struct conf_key	*k;
	char			 var[96], why[128];
	const char		*value;
	size_t			 i, j, n = strlen(ld->s->env_prefix);

	if (n >= sizeof(var) / 2) {
		snprintf(err, errlen, "environment prefix too long");
		return -1;
	}
	memcpy(var, ld->s->env_prefix, n);
	for (i = 0; i < ld->s->nkeys; i++) {
		k = &ld->s->keys[i];
		for (j = 0; k->name[j] != '\0' && n + j + 1 < sizeof(var); j++)
			var[n + j] = (char)toupper((unsigned char)k->name[j]);
		var[n + j] = '\0';
		if ((value = getenv(var)) == NULL)
			continue;
		if (key_set(ld, k, value, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "environment %s: %s: value %s",
			    var, k->name, why);
			return -1;
		}
	}
	return 0;
}

int
conf_load(const struct conf_schema *s, void *c, const char *path,
    const char **obsolete, char *err, size_t errlen)
{
	struct conf_load	 ld = { s, c, NULL };
	char			 why[128];
	size_t			 i;

	memset(c, 0, s->size);
	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i].type != CONF_OBSOLETE &&
		    key_set(&ld, &s->keys[i], s->keys[i].def, why,
		    sizeof(why)) == -1) {
			snprintf(err, errlen, "default of %s: %s",
			    s->keys[i].name, why);
			goto fail;
		}
	if (parse_file(&ld, path, err, errlen) == -1 ||
	    parse_env(&ld, err, errlen) == -1)
		goto fail;
	*obsolete = ld.obsolete;
	return 0;
fail:
	conf_free(s, c);
	return -1;
}

void
conf_free(const struct conf_schema *s, void *c)
{
	char	**field;
	size_t	  i;

	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i].type == CONF_STR) {
			field = (char **)(void *)((char *)c + s->keys[i].off);
			free(*field);
			*field = NULL;
		}
}

void
conf_dump(const struct conf_schema *s, const void *c, FILE *f)
{
	const struct conf_key	*k;
	const char		*field;
	size_t			 i;

	for (i = 0; i < s->nkeys; i++) {
		k = &s->keys[i];
		if (k->type == CONF_OBSOLETE)
			continue;
		field = (const char *)c + k->off;
		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case CONF_STR:
			if (k->secret)
				fputs(**(char *const *)(const void *)field ?
				    "(secret)" : "", f);
			else
				fputs(*(char *const *)(const void *)field, f);
			break;
		case CONF_INT:
			fprintf(f, "%lld",
			    *(const long long *)(const void *)field);
			break;
		case CONF_BOOL:
			fputs(*(const int *)(const void *)field ? "on" : "off",
			    f);
			break;
		case CONF_RATIO:
			fprintf(f, "%.15g", *(const double *)(const void *)field);
			break;
		case CONF_ENUM:
			fputs(k->names[*(const int *)(const void *)field], f);
			break;
		case CONF_OBSOLETE:
			break;
		}
		fputc('\n', f);
	}
}

void
conf_list_keys(const struct conf_schema *s, FILE *f)
{
	size_t	i;

	for (i = 0; i < s->nkeys; i++)
		fprintf(f, "%s\n", s->keys[i].name);
}
