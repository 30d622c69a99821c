# Write files atomically, in one command. Arguments: CONF_ROOT TOTAL OP..., where each OP
# is one of
#   E DIR NAME SHA|-                  expect DIR/NAME to have this sha256 (- : be absent)
#   W DIR NAME OWNER GROUP MODE LEN   write the next LEN bytes of stdin to DIR/NAME
#                                     (OWNER empty: keep this login as the owner)
#   R DIR NAME                        remove DIR/NAME
# DIR is relative to the conf root (`.` for the root itself). TOTAL is the length of stdin.
#
# 1. Every expectation is checked first: if any file moved on since it was gathered (a hand
#    edit, another tool), nothing is written (exit 5).
# 2. All content is staged in switchyard's private folder and its length checked, so a
#    connection cut during the upload changes nothing (exit 3).
# 3. Each file is prepared there (content, owner, mode, fsync), where nobody else can
#    reach it: no chown or chmod ever runs on a name someone else could have replaced.
# 4. Only then is each renamed into place from inside its folder (reached by sy_enter):
#    rename(2) replaces whatever has the name, a planted link included, and never follows
#    it. A cut leaves each file entirely old or entirely new.
set -eu
umask 077
root=$1
total=$2
shift 2

# Visit every operation once, in order (the arguments rotate back to where they were).
# $1 is the phase; the operation's words follow.
each() {
    phase=$1
    shift
    n=$#
    i=0
    while [ $i -lt $n ]; do
        case $1 in
            E) w=4 ;;
            W) w=7 ;;
            R) w=3 ;;
            *) sy_die "write: bad operation \`$1\`" ;;
        esac
        "$phase" "$@"
        j=0
        while [ $j -lt $w ]; do set -- "$@" "$1"; shift; j=$((j + 1)); done
        i=$((i + w))
    done
}

# 1. expectations
expect() {
    [ "$1" = E ] || return 0
    if ! sy_enter "$root" "$2"; then
        # No such folder: the file is absent.
        [ "$4" = - ] && return 0
        printf 'switchyard: %s changed since it was read; nothing written\n' "$2/$3" >&2
        exit 5
    fi
    if [ -L "$3" ]; then
        sy_die "$2/$3 is a symbolic link; switchyard never follows links under the conf root"
    fi
    if [ "$4" = - ]; then
        if [ -e "$3" ]; then
            printf 'switchyard: %s appeared since it was read; nothing written\n' "$2/$3" >&2
            exit 5
        fi
    elif [ ! -f "$3" ] || [ "$(sha256sum < "$3" | cut -d' ' -f1)" != "$4" ]; then
        printf 'switchyard: %s changed since it was read; nothing written\n' "$2/$3" >&2
        exit 5
    fi
}
each expect "$@"

# 2. stage
sy_private "$root"
rm -rf -- stage.* 2>/dev/null || true   # a killed run's leftovers (this run holds the lock)
stage=$(mktemp -d stage.XXXXXX)
cd -P -- "$stage"
exec 4<.
dev=$(stat -c %d .)
trap 'cd -P /proc/self/fd/4 && rm -f -- all f* && cd .. && rmdir -- "$stage"' EXIT
trap 'exit 129' HUP INT TERM PIPE
cat > all
[ "$(wc -c < all)" -eq "$total" ] || { echo 'switchyard: upload incomplete, nothing changed' >&2; exit 3; }

# 3. prepare
off=1
k=0
prepare() {
    [ "$1" = W ] || return 0
    k=$((k + 1))
    cd -P -- /proc/self/fd/4
    tail -c +"$off" all | head -c "$7" > "f$k"
    [ "$(wc -c < "f$k")" -eq "$7" ] || exit 1
    if [ -n "$4" ]; then chown -- "$4:$5" "f$k"; fi
    chmod -- "$6" "f$k"
    sync -- "f$k" 2>/dev/null || sync
    off=$((off + $7))
}
each prepare "$@"

# 4. into place
k=0
place() {
    case $1 in
        W)
            k=$((k + 1))
            sy_enter "$root" "$2" "${4:-$(id -un)}" "${5:-$(id -gn)}"
            [ "$(stat -c %d .)" = "$dev" ] ||
                sy_die "$2 is on another file system than the conf root; cannot replace $3 atomically"
            rm -f -- ./.*.switchyard-tmp.* 2>/dev/null || true   # older versions' temp files
            mv -fT -- "/proc/self/fd/4/f$k" "$3"
            sync -- . 2>/dev/null || true ;;
        R)
            if sy_enter "$root" "$2"; then rm -f -- "$3"; fi ;;
    esac
}
each place "$@"
echo switchyard-write-ok
