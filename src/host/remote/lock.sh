# The host lock: held by this command (on the run's own SSH session) from the write to the
# end of verification; a run that dies or loses its connection releases it with its
# session, so there are no stale locks. Arguments: CONF_ROOT OWNER.
# Prints `switchyard-locked` once held; exit 75 and `LOCKED <owner>` when another run holds it.
root=$1
owner=$2
sy_private "$root"
# Relative names in the checked private folder: nobody else can create or replace them.
# Who holds the lock is information only: a full disk must not stop the lock.
SY_OWNER=$owner
export SY_OWNER
# shellcheck disable=SC2016 # expanded by the shell flock starts
flock -n -E 75 lock -c '{ printf "%s\n" "$SY_OWNER" > lock.owner; } 2>/dev/null; rm -rf -- stage.* writing 2>/dev/null; echo switchyard-locked; exec cat > /dev/null'
rc=$?
[ $rc -ne 75 ] || printf 'LOCKED %s\n' "$(cat lock.owner 2>/dev/null || echo unknown)"
exit $rc
