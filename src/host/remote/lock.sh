# The host lock: held by this command (on the run's own SSH session) from the write to the
# end of verification; a run that dies or loses its connection releases it with its
# session, so there are no stale locks. Arguments: CONF_ROOT OWNER.
# Prints `switchyard-locked` once held; exit 75 and `LOCKED <owner>` when another run holds it.
#
# While held it writes the state record the controller sends on stdin (lines, then a line
# holding only ASCII US, 0x1f, which serde_json never writes raw): to state.new, flushed,
# then renamed over state.json, answering `switchyard-record-ok`. Recording what is still
# owed after the steps so costs no new channel, login shell or walk: only `sync` and `mv`.
# A record cut short (the controller gone mid-send) is never renamed into place; the next
# lock removes it.
root=$1
owner=$2
umask 077
sy_private "$root"
# Relative names in the checked private folder: nobody else can create or replace them.
# Who holds the lock is information only: a full disk must not stop the lock.
SY_OWNER=$owner
export SY_OWNER
# shellcheck disable=SC2016 # expanded by the shell flock starts
flock -n -E 75 lock -c '{ printf "%s\n" "$SY_OWNER" > lock.owner; } 2>/dev/null
rm -rf -- stage.* writing state.new 2>/dev/null
echo switchyard-locked
e=$(printf "\037")
w=
while IFS= read -r l; do
    if [ "$l" != "$e" ]; then
        if [ -z "$w" ]; then
            if { command exec 3> state.new; } 2>/dev/null; then w=1; else w=bad; fi
        fi
        [ "$w" != 1 ] || printf "%s\n" "$l" >&3 || w=bad
    else
        exec 3>&-
        if [ "$w" = 1 ] && { sync -- state.new 2>/dev/null || sync; } && mv -f -- state.new state.json; then
            echo switchyard-record-ok
        else
            echo switchyard-record-failed
        fi
        w=
    fi
done'
rc=$?
[ $rc -ne 75 ] || printf 'LOCKED %s\n' "$(cat lock.owner 2>/dev/null || echo unknown)"
exit $rc
