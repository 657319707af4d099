# Writes the bodies of POST /v1/pools/{pool}/items for HTTP bulk loading: files
# <dir>/body-<k>.json of `batch` items each, items i1..i<n>, priority i % 10.
BEGIN {
  for (start = 1; start <= n; start += batch) {
    f = sprintf("%s/body-%06d.json", dir, start)
    printf "{\"items\":[" > f
    for (i = start; i < start + batch && i <= n; i++)
      printf "%s{\"id\":\"i%d\",\"priority\":%d}", (i > start ? "," : ""), i, i % 10 > f
    printf "]}" > f
    close(f)
  }
}
