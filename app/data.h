/*
 * data: the business resources (users, items) as the API shows them.
 * Owns query-parameter parsing for lists, the cache keys of each answer,
 * validation of written fields, and the builders that read PostgreSQL and
 * serialize one whole envelope into a cache entry.  Shared by wxapp-fcgi
 * and `wxappctl preload`, so both build byte-identical entries.
 */
#ifndef WX_DATA_H
#define WX_DATA_H

#include "db.h"
#include "httpcache.h"
#include "request.h"
#include "response.h"

#define DATA_PAGE_SIZE		20
#define DATA_PAGE_SIZE_MAX	100
#define DATA_PAGE_MAX		100000

struct list_query {
	const char	*category;	/* NULL: every category */
	long long	 page;		/* page-based: 1.., keyset: 0 */
	long long	 page_size;
	long long	 after;		/* keyset: the last id seen, else 0 */
	/*
	 * A private list (app_private, never cached): users in full, items
	 * of any status, or of one owner and one status.
	 */
	int		 private;
	long long	 owner;		/* items: this owner's only; 0: any */
	const char	*status;	/* items: this status only; NULL: any */
	/*
	 * A shared list: where its total is kept, one per version of the
	 * collection (NULL: counted for every page built).
	 */
	struct cache	*counts;
	const char	*count_coll;
	long long	 count_ttl;
};

struct one_query {
	long long	 id;
	int		 profile;	/* ?include=profile */
	/*
	 * A private answer (app_private): the whole user; an item of any
	 * status when viewer owns it or admin is set.
	 */
	int		 private;
	long long	 viewer;
	int		 admin;
};

/* ?page, ?page_size, ?after (and ?category); -1 with a 400 set. */
int	data_parse_list(struct req *, struct resp *, int category,
	    struct list_query *);
/* The {id} path parameter; -1 with a 400 set. */
int	data_parse_id(struct req *, struct resp *, long long *);
/* The cache key of a list answer. */
const char *data_list_key(struct arena *, const struct list_query *);
/*
 * Keep a shared list's total in cc, one count per version of coll, for
 * ttl seconds: every page of a filter then shares one count after a write.
 */
void	data_list_counts(struct list_query *, struct cache *cc,
	    const char *coll, long long ttl);
/* The cache key of a single-resource answer. */
const char *data_one_key(struct arena *, const struct one_query *);

/* Builders: one whole envelope into e (status 200, or 404). */
/*
 * A list page: the page statement, and the count when page-based.  The
 * page statements take the page size, the offset (or the id after) and
 * then up to three filters; the count takes the filters alone.  Rows are
 * serialized by fn; the newest of column epoch_no is Last-Modified.
 */
enum db_status data_build_list(struct db *, struct arena *,
	    const struct list_query *, size_t page_st, size_t after_st,
	    size_t count_st, const char *const *filters,
	    void (*fn)(struct buf *, PGresult *, int), int epoch_no,
	    struct hc_entry *);
/* Finish an entry from its body buffer b: status, ETag. */
void	data_entry_done(struct hc_entry *, int status, struct buf *b,
	    long long last_modified);
/* A 404 envelope naming what and id as an entry (negative caching). */
void	data_entry_not_found(struct arena *, struct hc_entry *,
	    const char *what, long long id);
/* An integer column of a row (an epoch, an id); 0 when NULL or unreadable. */
long long data_int_col(PGresult *, int row, int col);
enum db_status data_build_items(struct db *, struct arena *, const void *,
	    struct hc_entry *);
enum db_status data_build_item(struct db *, struct arena *, const void *,
	    struct hc_entry *);
enum db_status data_build_users(struct db *, struct arena *, const void *,
	    struct hc_entry *);
enum db_status data_build_user(struct db *, struct arena *, const void *,
	    struct hc_entry *);

/*
 * Serialize row `row` of a USER_COLS / ITEM_COLS result.  A user as
 * anyone may see it (id, name, avatar), or in full as the user and
 * admins do (e-mail, phone, role, times).
 */
void	data_user_json(struct buf *, PGresult *, int row);
void	data_user_full_json(struct buf *, PGresult *, int row);
void	data_item_json(struct buf *, PGresult *, int row);
/* A column of a result as a JSON member: its name, number or string. */
struct data_col {
	const char	*name;
	int		 col;
	int		 number;
};
/* Row row of res as a JSON object of the n columns cols (NULL: null). */
void	data_row_json(struct buf *, PGresult *, int row,
	    const struct data_col *cols, size_t n);

/*
 * The fields of an item a client writes, by name (NULL-ended): in the
 * order of their columns in ITEM_COLS (from IC_TITLE) and of the
 * parameters of the item statements.
 */
enum item_field {
	IF_TITLE, IF_SUMMARY, IF_COVER, IF_CATEGORY, IF_STATUS, IF_COUNT
};
extern const char *const data_item_fields[IF_COUNT + 1];

/* Validation of written fields; -1 with a 400 naming field and rule. */
int	data_valid_text(struct arena *, struct resp *, const char *field,
	    const char *in, long min, long max, int multiline,
	    const char **out);
int	data_valid_email(struct arena *, struct resp *, const char *in,
	    const char **out);
int	data_valid_category(struct resp *, const char *field, const char *in);

#endif
