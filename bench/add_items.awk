# Emits the Redis protocol for the project's own add_items script (lua/add_items.lua run by
# EVALSHA), `batch` items per call, for redis-cli --pipe. Items i<from>..i<from+n-1>,
# priority i % 10, data {}. Variables: sha, tenant, pool, n, batch, from (default 1).
function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
BEGIN {
  split("pool items avail leased delayed done dead holders fence events idem", sfx, " ")
  pre = "lh:{" tenant "/" pool "}:"
  if (from == "") from = 1
  last = from + n - 1
  for (start = from; start <= last; start += batch) {
    b = (last - start + 1 < batch) ? last - start + 1 : batch
    printf "*%d\r\n", 3 + 11 + 2 + 3 * b
    bulk("EVALSHA"); bulk(sha); bulk("11")
    for (k = 1; k <= 11; k++) bulk(pre sfx[k])
    bulk(""); bulk("")
    for (i = start; i < start + b; i++) { bulk("i" i); bulk(i % 10); bulk("{}") }
  }
}
