# The session that changes a host: takes the host lock, then serves the run's requests on
# stdin, in switchyard's private folder, until stdin ends. Arguments: CONF_ROOT OWNER.
# Prints `switchyard-locked` once held; exit 75 and `LOCKED <owner>` when another run holds it.
#
# The lock is a kernel `flock` on `lock`, held on descriptor 9 by this shell and by the file
# requests it runs (a write, the state record), never by a FreeSWITCH steps program (a
# daemon a step starts would hold it forever): a run that dies or loses its connection
# releases it with its session, so there are no stale locks, and a write or record that
# outlives a session killed under it (SIGKILL of the shell: its children go on) keeps the
# lock until its last `mv`, so that it never renames over the next run's files.
#
# Requests (one line, then its data), each answered by its output and then a line
# `ASCII GS (0x1d) NONCE STATUS`; the nonce is the controller's, so no output can pass for
# the end of an answer:
#   W NONCE SYNC N   N lines of words, the content: a write (write.sh, sy_write); a failed
#                    write ends the session (its content may not have been read)
#   S NONCE P        lines of a FreeSWITCH steps program up to a line holding only ASCII US
#                    (0x1f), then (P 1) the event socket password's line, in $sy_pw; run
#                    in the background while this shell waits for a line acknowledging
#                    the answer, so that the end of stdin ends the session at once
#   R NONCE N        N lines naming folders (relative to the conf root) a `W ... 0` wrote
#                    to, then the state record's lines up to a line holding only ASCII US:
#                    written to state.new, flushed with those folders by one `sync`, then
#                    renamed over state.json (`switchyard-record-ok`). A record cut short is
#                    never renamed into place; the next lock removes it.
# Nothing the controller sends ever becomes a process's argument here except file names.
sy_root=$1
owner=$2
umask 077
sy_private "$sy_root"
# Relative names in the checked private folder: nobody else can create or replace them.
exec 8<. 9>>lock
if flock -n -E 75 9; then :; else
    rc=$?
    if [ $rc -eq 75 ]; then
        o=unknown
        { IFS= read -r o < lock.owner; } 2>/dev/null || :
        printf 'LOCKED %s\n' "$o"
    fi
    exit $rc
fi
# Who holds the lock is information only: a full disk must not stop the lock.
{ printf '%s\n' "$owner" > lock.owner; } 2>/dev/null || :
# A killed run's leftovers: globs and tests are builtins; `rm` only when there is one.
set +f
for x in stage stage.* writing state.new; do
    if [ -e "$x" ] || [ -L "$x" ]; then
        rm -rf -- stage stage.* writing state.new 2>/dev/null || :
        break
    fi
done
echo switchyard-locked
e=$(printf "\037")
while IFS= read -r sy_req; do
    set -f
    # shellcheck disable=SC2086 # a request line: words without blanks
    set -- $sy_req
    set +f
    kind=${1:-}
    nonce=${2:-}
    case $kind in
        W)
            dsync=${3:-1}
            n=${4:-0}
            set -- "$nonce" "$dsync"
            while [ "$n" -gt 0 ]; do
                IFS= read -r w || exit 3
                set -- "$@" "$w"
                n=$((n - 1))
            done
            (
                exec 8<&-
                sy_write "$@"
            ) 2>&1
            rc=$?
            ;;
        S)
            p=
            while IFS= read -r l && [ "$l" != "$e" ]; do p="$p$l
"; done
            sy_pw=
            # shellcheck disable=SC2034 # read by the program (eval), in the background
            if [ "${3:-0}" = 1 ]; then IFS= read -r sy_pw || exit 3; fi
            # In the background, reading nothing of this session's stdin, while this shell
            # waits for the controller's acknowledgement: a controller gone (end of stdin)
            # ends the session, and so the lock, at once, whatever FreeSWITCH command is
            # still running (its own `timeout` ends it).
            {
                (
                    exec 8<&- 9>&-
                    eval "$p"
                ) 2>&1
                printf '\035%s %s\n' "$nonce" "$?"
            } </dev/null &
            unset sy_pw
            if ! IFS= read -r l; then
                kill "$!" 2>/dev/null
                exit 0
            fi
            wait "$!"
            continue
            ;;
        R)
            n=${3:-0}
            set --
            while [ "$n" -gt 0 ]; do
                IFS= read -r w || exit 3
                set -- "$@" "$w"
                n=$((n - 1))
            done
            w=
            while IFS= read -r l; do
                [ "$l" != "$e" ] || break
                if [ -z "$w" ]; then
                    if { command exec 7> state.new; } 2>/dev/null; then w=1; else w=bad; fi
                fi
                [ "$w" != 1 ] || printf "%s\n" "$l" >&7 || w=bad
            done
            [ "$l" = "$e" ] || w=bad
            exec 7>&-
            ok=1
            [ "$w" = 1 ] && (
                # The folders written to, held open (4-7: 3 is the walk's), flushed with
                # the record by one `sync` per four.
                fd=4
                dirs=
                flush() {
                    # shellcheck disable=SC2086 # /proc/self/fd/N: no spaces
                    sync -- /proc/self/fd/8/state.new $dirs 2>/dev/null || sync
                    k=4
                    while [ $k -lt $fd ]; do eval "exec $k<&-"; k=$((k + 1)); done
                    fd=4
                    dirs=
                }
                for d do
                    if [ "$d" = .switchyard ]; then
                        dirs="$dirs /proc/self/fd/8"
                        continue
                    fi
                    [ $fd -le 7 ] || flush
                    if sy_enter "$sy_root" "$d"; then
                        eval "exec $fd<."
                        dirs="$dirs /proc/self/fd/$fd"
                        fd=$((fd + 1))
                    fi
                done
                cd -P /proc/self/fd/8
                flush
                mv -f -- state.new state.json
            ) 2>/dev/null && ok=0
            if [ $ok -eq 0 ]; then
                echo switchyard-record-ok
            else
                echo switchyard-record-failed
            fi
            rc=0
            ;;
        *)
            echo "switchyard: unknown request" >&2
            exit 2
            ;;
    esac
    printf '\035%s %s\n' "$nonce" "$rc"
    [ "$kind" != W ] || [ "$rc" -eq 0 ] || exit "$rc"
done
