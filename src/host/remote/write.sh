# sy_write NONCE SYNC OP...: write files atomically. Run by the session (lock.sh) in a
# subshell, from switchyard's private folder, for a `W` request. Each OP is one of
#   E DIR NAME SHA                 expect DIR/NAME to have this sha256 (`-`: to be absent)
#   W DIR NAME OWNER GROUP STAGE   place the staged file STAGE/NAME as DIR/NAME (OWNER
#                                  empty: keep this login as the owner)
#   R DIR NAME                     remove DIR/NAME
# DIR is relative to the conf root (`.` for the root itself). The words came on stdin, never
# as arguments: any local user of the PBX reads every process's arguments, and a plain
# sha256 of a file that holds a secret, next to its masked diff, lets the secret be guessed
# offline. Stdin then holds the content, a tar archive (every file as `stage/STAGE/NAME`,
# with its mode, owner and group), then a line holding NONCE. SYNC `1`: the folders written
# to are flushed at the end; `0`: the session's next state record flushes them (see lock.sh).
#
# 1. All content is staged in switchyard's private folder by one `tar` (modes, owners and
#    groups set there, where nobody else can reach the files: no chown or chmod ever runs on
#    a name someone else could have replaced). A cut upload is found (tar fails, or the
#    NONCE line is missing) before anything changes (exit 3).
# 2. Every expectation is checked: if any file moved on since it was gathered (a hand
#    edit, another tool), nothing is written (exit 5).
# 3. The staged files are flushed to disk (one `sync`), then each folder's files are linked
#    into place by one `ln -f` from inside the folder (reached by sy_enter): GNU ln replaces
#    a name by linking to a temporary name and renaming it over, and rename(2) replaces
#    whatever has the name, a planted link included, and never follows it. A cut leaves each
#    file entirely old or entirely new; a folder on another file system fails the link
#    (EXDEV) instead of being copied into non-atomically.
# shellcheck disable=SC2317 # owners, expect and place are called through `each`
sy_write() {
    set -eu
    nonce=$1
    dsync=$2
    shift 2
    root=$sy_root

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
                W) w=6 ;;
                R) w=3 ;;
                *) sy_die "write: bad operation \`$1\`" ;;
            esac
            "$phase" "$@"
            j=0
            while [ $j -lt $w ]; do set -- "$@" "$1"; shift; j=$((j + 1)); done
            i=$((i + w))
        done
    }

    # 1. stage
    # `writing` marks a write in progress: a run killed before its cleanup leaves it, and the
    # next run's gather sees it, so even a run with nothing to change cleans up (under the lock).
    # Descriptor 4 holds the private folder (this shell's folder now) wherever the walk goes.
    exec 4<.
    : > writing
    trap 'cd -P /proc/self/fd/4 && rm -rf -- stage writing' EXIT
    trap 'exit 129' HUP INT TERM PIPE
    # As root, tar gives each file the owner and group named in the archive; a name unknown
    # here would silently fall back to the archive's numeric id (0), which is caught below.
    if [ -O / ]; then own=--same-owner; else own=--no-same-owner; fi
    # /dev/stdin, not `-`: tar drains a `-` archive to its end, and the session reads on.
    # -B reads whole records (never past the archive, which the controller pads to them).
    if ! tar -x -B -p -m "$own" -f /dev/stdin; then
        echo 'switchyard: upload incomplete or unreadable, nothing changed' >&2
        exit 3
    fi
    IFS= read -r end || end=
    if [ "$end" != "$nonce" ]; then
        echo 'switchyard: upload incomplete, nothing changed' >&2
        exit 3
    fi
    owners() {
        [ "$1" = W ] || return 0
        f=stage/$6/$3
        if [ "$own" = --same-owner ]; then
            # Owned by root although another owner was named: no such user here.
            if [ -n "$4" ] && [ "$4" != root ] && [ -O "$f" ]; then
                sy_die "$2/$3: no user \`$4\` on this host"
            fi
            if [ -n "$5" ] && [ "$5" != root ] && [ -G "$f" ]; then
                sy_die "$2/$3: no group \`$5\` on this host"
            fi
        elif [ -n "$4" ]; then
            chown -- "$4:$5" "$f"
        fi
    }
    each owners "$@"

    # 2. expectations
    # Consecutive expectations in one folder are checked from inside it (walked to once).
    # Each file expected present is opened read-write from its folder (never blocking on a
    # FIFO swapped in: see gather.sh) and judged on that descriptor (`[ -f /dev/fd/N ]` is
    # the shell's own stat of what it opened); up to 4 descriptors (5-8: 3 holds the walk's
    # folder, 4 the private folder, 9 the host lock) are hashed by one `sha256sum`.
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
        sha=$4
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
            [ "$xfd" -le 8 ] || hashes
        fi
    }
    each expect "$@"
    hashes

    # 3. flush the staged files, then into place
    cd -P -- /proc/self/fd/4
    set +f
    flush_staged() {
        set --
        for x in stage/*/* stage/*/.[!.]* stage/*/..?*; do
            if [ -e "$x" ]; then set -- "$@" "$x"; fi
        done
        if [ $# -gt 0 ]; then sync -- "$@" 2>/dev/null || sync; fi
    }
    flush_staged
    # Each folder is held open (descriptors 5-8; 9 is the host lock) and all are synced by
    # one `sync` (or when four are held), after the links in them; with SYNC 0 the next state record does it.
    dfd=5
    dirs=
    stage=
    syncdirs() {
        if [ -n "$dirs" ] && [ "$dsync" = 1 ]; then
            # shellcheck disable=SC2086 # /proc/self/fd/N: no spaces
            sync -- $dirs 2>/dev/null || sync
        fi
        k2=5
        while [ $k2 -lt $dfd ]; do eval "exec $k2<&-"; k2=$((k2 + 1)); done
        dirs=
        dfd=5
    }
    # link STAGE: every file staged in stage/STAGE into the current folder, by one `ln`.
    link() {
        s=/proc/self/fd/4/stage/$1
        set --
        for x in "$s"/* "$s"/.[!.]* "$s"/..?*; do
            if [ -e "$x" ]; then set -- "$@" "$x"; fi
        done
        [ $# -eq 0 ] || ln -f -- "$@" .
    }
    place() {
        case $1 in
            W)
                if [ "$6" != "$stage" ]; then
                    [ "$dfd" -le 8 ] || syncdirs
                    stage=$6
                    sy_enter "$root" "$2" "${4:-=}" "${5:-=}"
                    # Older versions' temp files: a glob (a builtin), `rm` only when one is there.
                    for x in ./.*.switchyard-tmp.*; do
                        if [ -e "$x" ] || [ -L "$x" ]; then rm -f -- ./.*.switchyard-tmp.* 2>/dev/null || true; fi
                        break
                    done
                    link "$6" || sy_die "$2: cannot place the files there (another file system than the conf root?)"
                    eval "exec $dfd<."
                    dirs="$dirs /proc/self/fd/$dfd"
                    dfd=$((dfd + 1))
                fi ;;
            R)
                stage=
                if sy_enter "$root" "$2"; then rm -f -- "$3"; fi ;;
        esac
    }
    each place "$@"
    syncdirs
    echo switchyard-write-ok
}
