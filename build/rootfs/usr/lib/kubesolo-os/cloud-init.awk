# Flattens the YAML subset of KubeSolo OS cloud-init files into key=value
# lines (fixtures/cloud-init/README.md): nested maps by indentation
# (a.b.c=value), "- item" lists and [a, b] inline lists give one line per
# item; comments are removed. A scalar in single quotes is taken verbatim
# ('' is one quote), one in double quotes verbatim up to the next double
# quote. The lines are data: stage 50 reads them, never evaluates them
# (docs/boot-flow.md "Node configuration is data").
function trim(s) { sub(/^[ \t\r]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function uncomment(s) { sub(/[ \t]+#.*$/, "", s); return trim(s) }
# scalar(s): the value of the text after "key:" or "- ".
function scalar(s,   q, i, c, out, end) {
    s = trim(s); q = substr(s, 1, 1)
    if (q == "'") {
        out = ""
        for (i = 2; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (c != "'") { out = out c; continue }
            if (substr(s, i + 1, 1) == "'") { out = out "'"; i++; continue }
            return out
        }
    } else if (q == "\"") {
        end = index(substr(s, 2), "\"")
        if (end > 0) return substr(s, 2, end - 1)
    }
    return uncomment(s)  # a plain scalar, or an unclosed quote taken as written
}
function path(depth,   p, i) { p = ""; for (i = 1; i <= depth; i++) p = p (i > 1 ? "." : "") key[i]; return p }
function emit(k, v,   flow, n, items, i) {
    flow = uncomment(v)
    if (flow ~ /^\[.*\]$/) {
        n = split(substr(flow, 2, length(flow) - 2), items, ",")
        for (i = 1; i <= n; i++) if (trim(items[i]) != "") print k "=" scalar(items[i])
    } else print k "=" scalar(v)
}
{
    line = $0
    if (line ~ /^[ \t]*#/ || trim(line) == "" || line ~ /^---/) next
    match(line, /^ */); indent = RLENGTH; body = substr(line, indent + 1)
    while (depth > 0 && indent <= ind[depth] && !(body ~ /^- / && indent == ind[depth] && listkey[depth])) depth--
    if (body ~ /^- /) { emit(path(depth), substr(body, 3)); next }
    colon = index(body, ":"); if (colon == 0) next
    k = trim(substr(body, 1, colon - 1)); v = trim(substr(body, colon + 1))
    if (v ~ /^#/) v = ""
    depth++; key[depth] = k; ind[depth] = indent; listkey[depth] = (v == "")
    if (v != "") { emit(path(depth), v); depth-- }
}
