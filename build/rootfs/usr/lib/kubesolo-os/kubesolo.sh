# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# KubeSolo's command line, the helpers of stage 90 alone (docs/boot-flow.md
# "Stage 90 — KubeSolo"; docs/kubesolo.md "Command line"): the Portainer
# Edge settings of the cloud-init file, the merge of the flags by name, and
# the log line with the secret redacted. Stage 90 sources this file, after
# functions.sh (init's).

# KubeSolo's flags and their kinds (docs/kubesolo.md "Command line"): a
# bool never takes a value and has a --no- form; a list's values add up
# (comma-separated); every other flag takes one value.
KUBESOLO_FLAGS_TABLE=${KUBESOLO_FLAGS_TABLE:-/usr/lib/kubesolo-os/kubesolo-flags}

is_edge_value() { # a Portainer Edge ID or key: 1 to 512 of letters, digits and ._+/=-
    case $1 in ''|*[!A-Za-z0-9._+/=-]*) return 1 ;; esac
    [ "${#1}" -le 512 ]
}

# cloud_init_portainer FILE: PORTAINER_FLAGS, KubeSolo's Portainer Edge flags
# from the file's portainer.edge-id, portainer.edge-key and
# portainer.edge-async (docs/boot-flow.md "Stage 90 — KubeSolo"). A value
# outside its grammar is one warning and is not used (a bad key's warning
# shows <redacted>). The flattener's lines are read as data, never evaluated.
cloud_init_portainer() {
    PORTAINER_FLAGS=""
    [ -f "$1" ] || return 0
    local line key value
    while IFS= read -r line; do
        key=${line%%=*} value=${line#*=}
        case $key in
            portainer.edge-id|portainer.edge-key)
                if is_edge_value "$value"; then
                    PORTAINER_FLAGS="$PORTAINER_FLAGS --portainer-${key#portainer.}=$value"
                else
                    # the key is a secret, even when it is a bad one
                    [ "$key" = portainer.edge-key ] && value="<redacted>"
                    warn_bad "$1" "$key" "$value" "is not 1 to 512 letters, digits and ._+/=-"
                fi ;;
            portainer.edge-async)
                case $value in
                    true) PORTAINER_FLAGS="$PORTAINER_FLAGS --portainer-edge-async" ;;
                    false) PORTAINER_FLAGS="$PORTAINER_FLAGS --no-portainer-edge-async" ;;
                    *) warn_bad "$1" "$key" "$value" "is not true or false" ;;
                esac ;;
        esac
    done <<FLAT
$(awk -f "$CLOUD_INIT_AWK" "$1")
FLAT
}

# redact_flags WORD...: the words, with the value of a secret flag
# (--portainer-edge-key) replaced, for the console log.
redact_flags() {
    printf '%s\n' "$@" | awk '
        function put(word) { printf "%s%s", (NR > 1 ? " " : ""), word }
        secret { put("<redacted>"); secret = 0; next }
        /^--portainer-edge-key=/ { put("--portainer-edge-key=<redacted>"); next }
        $0 == "--portainer-edge-key" { secret = 1 }
        { put($0) }'
}

# merge_flags: read command-line words, one per line, and print them merged
# by flag name, one per line. A flag given again, or negated with --no-,
# replaces the earlier one and takes its place in the order; the values of
# a list flag are joined (comma-separated, duplicates dropped, order kept).
# A value is `--flag=value`, or the next word unless it starts with `-` (as
# kingpin reads it); the kinds come from KUBESOLO_FLAGS_TABLE. Words and the
# table are only data: nothing is evaluated. Without the table the words
# pass unmerged, for KubeSolo to judge (an image without it is a build bug).
merge_flags() {
    if [ ! -r "$KUBESOLO_FLAGS_TABLE" ]; then
        log_error "$KUBESOLO_FLAGS_TABLE missing: KubeSolo's flags are passed unmerged"
        cat
        return 0
    fi
    awk -v table="$KUBESOLO_FLAGS_TABLE" '
        BEGIN {
            while ((getline line < table) > 0) {
                sub(/#.*/, "", line)
                if (split(line, f, " ") < 2) continue
                if (f[2] == "bool") is_bool[f[1]] = 1
                if (f[2] == "list") is_list[f[1]] = 1
            }
        }
        { word[NR] = $0 }
        function place(key, text) {
            if (key in slot) delete owner[slot[key]]
            slot[key] = ++slots; owner[slots] = key; words_of[key] = text
        }
        function add_to_list(key, value,    n, parts, i) {
            n = split(value, parts, ",")
            for (i = 1; i <= n; i++) {
                if (parts[i] == "" || (key SUBSEP parts[i]) in listed) continue
                listed[key, parts[i]] = 1
                joined[key] = joined[key] (joined[key] == "" ? "" : ",") parts[i]
            }
            place(key, "--" key "\n" joined[key])
        }
        END {
            for (i = 1; i <= NR; i++) {
                w = word[i]
                # not a flag: kept where it is
                if (w !~ /^--[^=]/) { place("\001" i, w); continue }
                name = substr(w, 3); text = w; has_value = 0
                if ((eq = index(name, "=")) > 0) {
                    value = substr(name, eq + 1); name = substr(name, 1, eq - 1); has_value = 1
                }
                key = name
                if (name ~ /^no-/ && is_bool[substr(name, 4)]) key = substr(name, 4)
                if (!has_value && !is_bool[key] && i < NR && word[i + 1] !~ /^-/) {
                    value = word[++i]; text = text "\n" value; has_value = 1
                }
                if (is_list[key] && has_value) add_to_list(key, value)
                else place(key, text)
            }
            for (s = 1; s <= slots; s++) if (s in owner) print words_of[owner[s]]
        }'
}

# kubesolo_args HOSTNAME FILE_FLAGS CMDLINE_FLAGS: KubeSolo's arguments, one
# per line (stage 90): the defaults, then the flags file's, then the boot
# parameter's, merged by flag name (merge_flags), so the later source wins.
# Booleans take no value in KubeSolo's grammar: `--local-storage`, never
# `--local-storage true`.
kubesolo_args() (
    set -f  # the flag lists are split on blanks, never globbed
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    printf '%s\n' --path /var/lib/kubesolo --local-storage --apiserver-extra-sans "$1" $2 $3 |
        merge_flags
)
