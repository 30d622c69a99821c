# Shared by switchyard's remote programs (prepended to each; not run on its own).
#
# Everything under a PBX's conf root may have been planted by the `freeswitch` user, who
# owns it and can rename, replace and link anything in it at any moment. So these programs
# never reach a folder of the conf root by its path: `sy_enter` walks to it one component
# at a time from the conf root, refusing symbolic links, and after each step checks that
# `..` is the folder it came from (a folder swapped for a link between the check and the
# `cd` would fail that). What follows then uses names relative to the current folder, whose
# inode cannot be swapped under us.

# Print a reason and stop with status 6 (the host is refused, nothing more is done).
sy_die() {
    printf 'switchyard: %s\n' "$*" >&2
    exit 6
}

# sy_hold: hold the current folder open on descriptor 3, to compare the next folder's `..`
# with (`test -ef`, a shell builtin: the walk starts no process). A folder this login may
# enter but not read cannot be opened: its device and inode are kept instead (one `stat`).
sy_hold() {
    if { command exec 3<.; } 2>/dev/null; then
        sy_prev=
    else
        exec 3<&-
        sy_prev=$(stat -c %d:%i .) || exit 6
    fi
}

# sy_ids: after a `cd` into a folder, check that `..` is the folder we came from, and hold
# this one in its place.
sy_ids() {
    if [ -z "$sy_prev" ]; then
        # `-ef` is not in POSIX, but dash, bash, busybox and ksh have it; a shell without
        # it fails the test, which refuses the host rather than follow anything.
        # shellcheck disable=SC3013
        [ .. -ef /dev/fd/3 ] || return 1
    else
        [ "$(stat -c %d:%i ..)" = "$sy_prev" ] || return 1
    fi
    sy_hold
}

# sy_enter ROOT REL [OWNER GROUP]: make the folder ROOT/REL the current folder. With an
# owner, missing folders are created (mode 0750, that owner and group: FreeSWITCH must be
# able to read what goes in them; owner `=`: this login's, no chown); without, a missing
# folder returns 1.
sy_enter() {
    # The conf root itself: reached from its parent, never through a link (on a source
    # install its parent may belong to `freeswitch`, who could swap the root for a link).
    sy_c=${1%/}
    sy_c=${sy_c##*/}
    sy_p=${1%/}
    sy_p=${sy_p%/*}
    cd -P -- "${sy_p:-/}" || sy_die "cannot enter the conf root's folder ${sy_p:-/}"
    sy_hold
    if [ -L "$sy_c" ]; then
        sy_die "the conf root $1 is a symbolic link: set freeswitch_conf_root to the folder it points to"
    fi
    cd -P -- "$sy_c" || sy_die "cannot enter the conf root $1"
    sy_ids || sy_die "the conf root $1 was replaced while switchyard entered it"
    sy_rest=$2
    while [ -n "$sy_rest" ]; do
        sy_c=${sy_rest%%/*}
        if [ "$sy_c" = "$sy_rest" ]; then sy_rest=; else sy_rest=${sy_rest#*/}; fi
        case $sy_c in
            '' | .) continue ;;
            ..) sy_die "$2: \`..\` in a path under the conf root" ;;
        esac
        if [ -L "$sy_c" ]; then
            sy_die "$2: \`$sy_c\` is a symbolic link; switchyard never follows links under the conf root"
        fi
        if [ ! -e "$sy_c" ]; then
            [ -n "${3:-}" ] || return 1
            mkdir -m 750 -- "$sy_c" || exit 6
            if [ "$3" != = ]; then chown -h -- "$3:$4" "$sy_c" || exit 6; fi
        fi
        cd -P -- "$sy_c" || sy_die "$2: cannot enter \`$sy_c\`"
        sy_ids ||
            sy_die "$2: \`$sy_c\` is not a folder of the conf root (replaced while switchyard walked to it)"
    done
}

# sy_private ROOT: make ROOT/.switchyard the current folder: created mode 0700 by this
# login, refused when it is a link, belongs to anyone else, or is open to others (anyone
# who can write in it could plant links where switchyard keeps its lock and record).
sy_private() {
    # A conf root that does not exist yet is created (its path comes from the inventory).
    [ -e "$1" ] || [ -L "$1" ] || mkdir -p -- "$1" || exit 6
    sy_enter "$1" ""
    if [ -L .switchyard ]; then
        sy_die ".switchyard in the conf root is a symbolic link; remove it"
    fi
    sy_made=
    if [ ! -e .switchyard ]; then
        mkdir -m 700 -- .switchyard || exit 6
        sy_made=1
    fi
    sy_enter "$1" .switchyard || sy_die "$1/.switchyard disappeared while switchyard entered it"
    [ -O . ] ||
        sy_die "$1/.switchyard belongs to $(stat -c %U .), not to $(id -un); remove it (anyone who owns it can plant links in it)"
    # Just made 0700 by this login (and, being its owner's, changed by nobody else since):
    # no `stat` needed to know its mode.
    [ -n "$sy_made" ] && return 0
    case $(stat -c %a .) in
        700) ;;
        *) chmod 700 . || exit 6 ;;
    esac
}
