# Write files atomically, in one command. Arguments: CONF_ROOT TOTAL OP..., where each OP
# is one of
#   E DIR NAME                        expect DIR/NAME to have the sha256 on the next line
#                                     of stdin (`-`: to be absent)
#   W DIR NAME OWNER GROUP MODE LEN   write the next LEN bytes of stdin to DIR/NAME
#                                     (OWNER empty: keep this login as the owner)
#   R DIR NAME                        remove DIR/NAME
# DIR is relative to the conf root (`.` for the root itself). Stdin: one line per E, then
# the content, TOTAL bytes. The expected hashes never travel as arguments: any local user
# of the PBX reads every process's arguments, and a plain sha256 of a file that holds a
# secret, next to its masked diff, lets the secret be guessed offline.
#
# 1. Every expectation is checked first: if any file moved on since it was gathered (a hand
#    edit, another tool), nothing is written (exit 5).
# 2. All content is staged in switchyard's private folder and its length checked, so a
#    connection cut during the upload changes nothing (exit 3).
# 3. Each file is prepared there (content, owner, mode, fsync), where nobody else can
#    reach it: no chown or chmod ever runs on a name someone else could have replaced.
#    The work is batched: one chown/chmod per distinct owner and mode, one sync.
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
            E) w=3 ;;
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
# Consecutive expectations in one folder are checked from inside it (walked to once). Each
# file expected present is opened read-write from its folder (never blocking on a FIFO
# swapped in: see gather.sh) and judged on that descriptor (`[ -f /dev/fd/N ]` is the
# shell's own stat of what it opened); up to 5 descriptors (5-9: 3 holds the walk's folder,
# 4 the stage) are hashed by one `sha256sum`.
in_dir=
xfd=5
hashes() {
    [ "$xfd" -gt 5 ] || return 0
    set --
    k=5
    while [ $k -lt "$xfd" ]; do set -- "$@" "/dev/fd/$k"; k=$((k + 1)); done
    # shellcheck disable=SC2046 # 64 hex digits and /dev/fd/N: no spaces in them
    set -- $(sha256sum -- "$@") || exit 1
    k=5
    want=
    what=
    while [ $k -lt "$xfd" ]; do
        eval "want=\$x_$k; what=\$n_$k"
        if [ "$1" != "$want" ]; then
            printf 'switchyard: %s changed since it was read; nothing written\n' "$what" >&2
            exit 5
        fi
        eval "exec $k<&-"
        shift 2
        k=$((k + 1))
    done
    xfd=5
}
expect() {
    [ "$1" = E ] || return 0
    IFS= read -r sha || sy_die "write: expected hashes missing from stdin"
    if [ "$2" != "$in_dir" ]; then
        in_dir=
        if ! sy_enter "$root" "$2"; then
            # No such folder: the file is absent.
            [ "$sha" = - ] && return 0
            printf 'switchyard: %s changed since it was read; nothing written\n' "$2/$3" >&2
            exit 5
        fi
        in_dir=$2
    fi
    if [ -L "$3" ]; then
        sy_die "$2/$3 is a symbolic link; switchyard never follows links under the conf root"
    fi
    # -ef below: not POSIX, but in dash, bash, busybox and ksh (as common.sh's walk).
    # shellcheck disable=SC3013
    if [ "$sha" = - ]; then
        if [ -e "$3" ]; then
            printf 'switchyard: %s appeared since it was read; nothing written\n' "$2/$3" >&2
            exit 5
        fi
    elif [ ! -f "$3" ]; then
        printf 'switchyard: %s changed since it was read; nothing written\n' "$2/$3" >&2
        exit 5
    elif ! { eval "command exec $xfd<>\"\$3\""; } 2>/dev/null; then
        sy_die "$2/$3 cannot be opened read-write by this login"
    # Swapped for a special file or a link between the check and the open: changed.
    elif [ ! -f "/dev/fd/$xfd" ] || [ -L "$3" ] || ! [ "$3" -ef "/dev/fd/$xfd" ]; then
        printf 'switchyard: %s changed since it was read; nothing written\n' "$2/$3" >&2
        exit 5
    else
        eval "x_$xfd=\$sha; n_$xfd=\$2/\$3"
        xfd=$((xfd + 1))
        [ "$xfd" -le 9 ] || hashes
    fi
}
each expect "$@"
hashes

# 2. stage
sy_private "$root"
# A killed run's leftovers (this run holds the lock; its lock already removed them: the
# glob, a builtin, finds none and no `rm` starts).
for x in stage.*; do
    if [ -e "$x" ]; then rm -rf -- stage.* 2>/dev/null || true; fi
    break
done
# `writing` marks a write in progress: a run killed before its cleanup leaves it, and the
# next run's gather sees it, so even a run with nothing to change cleans up (under the lock).
: > writing
stage=$(mktemp -d stage.XXXXXX)
cd -P -- "$stage"
exec 4<.
dev=$(stat -c %d .)
trap 'cd -P /proc/self/fd/4 && cd .. && rm -rf -- "$stage" writing' EXIT
trap 'exit 129' HUP INT TERM PIPE
cat > all
[ "$(wc -c < all)" -eq "$total" ] || { echo 'switchyard: upload incomplete, nothing changed' >&2; exit 3; }

# 3. prepare
off=1
k=0
# Files with the same owner, group and mode (most of them) get one chown and one chmod;
# all are flushed to disk with one sync. The names are f1, f2...: safe to split on spaces.
# (A short write, a full disk, fails `dd` and so the script: set -e.)
batch=
attrs=
flush() {
    [ -n "$batch" ] || return 0
    # shellcheck disable=SC2086
    if [ -n "$b_owner" ]; then chown -- "$b_owner:$b_group" $batch; fi
    # shellcheck disable=SC2086
    chmod -- "$b_mode" $batch
    batch=
}
prepare() {
    [ "$1" = W ] || return 0
    k=$((k + 1))
    dd if=all of="f$k" iflag=skip_bytes,count_bytes skip=$((off - 1)) count="$7" status=none
    if [ "$4:$5:$6" != "$attrs" ]; then
        flush
        attrs="$4:$5:$6"
        b_owner=$4
        b_group=$5
        b_mode=$6
    fi
    batch="$batch f$k"
    off=$((off + $7))
}
cd -P -- /proc/self/fd/4
each prepare "$@"
flush
if [ "$k" -gt 0 ]; then sync -- f* 2>/dev/null || sync; fi

# 4. into place
# Consecutive files of one folder are placed from inside it without walking to it again:
# the working directory is the folder sy_enter checked, whatever its name has become since.
# Each folder is held open (descriptors 5-9) and all are synced by one `sync` at the end
# (or when five are held), after every rename in them.
k=0
here=
dfd=5
dirs=
syncdirs() {
    [ -n "$dirs" ] || return 0
    # shellcheck disable=SC2086 # /proc/self/fd/N: no spaces
    sync -- $dirs 2>/dev/null || sync
    k2=5
    while [ $k2 -lt $dfd ]; do eval "exec $k2<&-"; k2=$((k2 + 1)); done
    dirs=
    dfd=5
}
place() {
    case $1 in
        W)
            k=$((k + 1))
            if [ "$2" != "$here" ]; then
                [ $dfd -le 9 ] || syncdirs
                sy_enter "$root" "$2" "${4:-=}" "${5:-=}"
                [ "$(stat -c %d .)" = "$dev" ] ||
                    sy_die "$2 is on another file system than the conf root; cannot replace $3 atomically"
                # Older versions' temp files: a glob (a builtin), `rm` only when one is there.
                for x in ./.*.switchyard-tmp.*; do
                    if [ -e "$x" ] || [ -L "$x" ]; then rm -f -- ./.*.switchyard-tmp.* 2>/dev/null || true; fi
                    break
                done
                eval "exec $dfd<."
                dirs="$dirs /proc/self/fd/$dfd"
                dfd=$((dfd + 1))
                here=$2
            fi
            mv -fT -- "/proc/self/fd/4/f$k" "$3" ;;
        R)
            here=
            if sy_enter "$root" "$2"; then rm -f -- "$3"; fi ;;
    esac
}
each place "$@"
syncdirs
echo switchyard-write-ok
