# Flattens the YAML subset of KubeSolo OS cloud-init files into key=value
# lines: nested maps by indentation (a.b.c=value), "- item" lists and
# [a, b] inline lists give one line per item. Comments and quotes are removed.
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function unquote(s) { s = trim(s); if (s ~ /^".*"$/ || s ~ /^'.*'$/) s = substr(s, 2, length(s) - 2); return s }
function path(depth,   p, i) { p = ""; for (i = 1; i <= depth; i++) p = p (i > 1 ? "." : "") key[i]; return p }
function emit(k, v,   n, items, i) {
    v = trim(v)
    if (v ~ /^\[.*\]$/) {
        n = split(substr(v, 2, length(v) - 2), items, ",")
        for (i = 1; i <= n; i++) if (trim(items[i]) != "") print k "=" unquote(items[i])
    } else print k "=" unquote(v)
}
{
    line = $0
    sub(/[ \t]+#.*$/, "", line); if (line ~ /^[ \t]*#/) next
    if (trim(line) == "" || line ~ /^---/) next
    match(line, /^ */); indent = RLENGTH; body = substr(line, indent + 1)
    while (depth > 0 && indent <= ind[depth] && !(body ~ /^- / && indent == ind[depth] && listkey[depth])) depth--
    if (body ~ /^- /) { emit(path(depth), substr(body, 3)); next }
    colon = index(body, ":"); if (colon == 0) next
    k = trim(substr(body, 1, colon - 1)); v = trim(substr(body, colon + 1))
    depth++; key[depth] = k; ind[depth] = indent; listkey[depth] = (v == "")
    if (v != "") { emit(path(depth), v); depth-- }
}
