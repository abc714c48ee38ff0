/*
 * stmts: every SQL statement the responder runs, declared once.  Each is
 * prepared on every (re)connect; handlers run them by index.
 */
#include "app.h"

const struct db_stmt app_stmts[STMT_COUNT] = {
	[STMT_PING] = { "ping", "SELECT 1", 0 },
};
