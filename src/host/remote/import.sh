# `switchyard import`: list every `*.xml` file and every symbolic link under the conf root,
# then read them with the gather (gather.sh, appended after this program), in one command
# that writes nothing on the host. Arguments: CONF_ROOT LIMIT MAX_FILES.
#
# Consistency: a switchyard run changes files only while it holds the host lock
# (.switchyard/lock, lock.sh). If that file exists, this program takes it *shared* on its
# standard input (fd 0: the gather closes descriptors 3-9 between batches, never 0), so no
# run writes while the tree is read, and opening an existing file writes nothing. If the host
# was never locked (no .switchyard/lock), nothing is created: the lock file must still be
# absent after the read, else a run started meanwhile and the host is refused (exit 76).
#
# Answer: `switchyard-import LOCKED N K` (LOCKED: `locked` or `unlocked`; N paths listed; K
# files whose name holds a line break, not listed), the N paths as `find` prints them (`./REL`),
# one per line, then the gather's answer for them. Links are listed (never followed: the
# gather classes them `L`); `find` never descends into a linked folder.
root=${1%/}
limit=$2
max=$3
sy_enter "$root" ""
locked=unlocked
if [ -L .switchyard ]; then
    sy_die ".switchyard in the conf root is a symbolic link; remove it"
fi
if [ -d .switchyard ]; then
    sy_enter "$root" .switchyard || sy_die "$root/.switchyard disappeared while switchyard entered it"
    [ -O . ] ||
        sy_die "$root/.switchyard belongs to $(stat -c %U .), not to $(id -un); remove it (anyone who owns it can plant links in it)"
    if [ -e lock ] || [ -L lock ]; then
        if [ -L lock ] || [ ! -f lock ]; then sy_die "$root/.switchyard/lock is not a regular file"; fi
        exec 0<lock || exit 6
        if ! flock -s -n -E 75 0; then
            # The owner as lock.sh reads it: its first line, by the shell (no process).
            o=unknown
            { IFS= read -r o < lock.owner; } 2>/dev/null || :
            printf 'LOCKED %s\n' "$o"
            exit 75
        fi
        locked=locked
    fi
    sy_enter "$root" ""
fi
nl='
'
list=$(find . -path ./.switchyard -prune -o \( -type l -o -name '*.xml' \) ! -name "*$nl*" -print) ||
    sy_die "cannot list every folder of the conf root $root"
odd=$(find . -path ./.switchyard -prune -o -name "*$nl*" -exec printf 'N\n' \;) ||
    sy_die "cannot list every folder of the conf root $root"
set -f
set -- "$root" "$limit"
n=0
IFS=$nl
for f in $list; do
    n=$((n + 1))
    if [ "$n" -gt "$max" ]; then
        sy_die "more than $max files to import under $root (the limit of one import)"
    fi
    set -- "$@" "$root/${f#./}"
done
IFS=' 	
'
k=0
for f in $odd; do k=$((k + 1)); done
printf 'switchyard-import %s %s %s\n' "$locked" "$n" "$k"
[ -z "$list" ] || printf '%s\n' "$list"
if [ "$locked" = unlocked ]; then
    trap 'if [ -e "$root/.switchyard/lock" ]; then printf "switchyard: a switchyard run took the host lock while the conf tree was read; import again\n" >&2; exit 76; fi' EXIT
fi
