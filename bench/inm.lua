-- wrk script for the conditional GET: every request carries
-- If-None-Match with the ETag bench/run found (BENCH_ETAG), so a current
-- entry is answered 304 with no body.  No Accept-Encoding is sent (wrk
-- sends none), so nginx's gzip leaves the ETag strong.
local etag = os.getenv("BENCH_ETAG")
if etag == nil or etag == "" then
	error("BENCH_ETAG is not set")
end
wrk.headers["If-None-Match"] = etag
