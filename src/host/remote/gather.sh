# Gather owner, group, mode and content of every managed file in one command.
# Arguments: CONF_ROOT LIMIT PATH... (absolute paths under the conf root; LIMIT in bytes).
#
# Everything under the conf root may be swapped by the `freeswitch` user at any moment, so a
# file is judged on the descriptor that is then read, never by its name alone: each file is
# opened read-write from inside its folder (an open for reading blocks forever on a FIFO
# swapped in after the name was checked; read-write never blocks, and the login must be able
# to replace the file anyway), then `stat -L` on /dev/fd/N says what was opened: only a
# regular file of at most LIMIT bytes is read, and each read is bounded by the largest size
# stat gave in its batch, plus one (`head -q -c`: one process for all of a batch's files),
# so a file grown after the check cannot make more than that travel; the controller splits
# the contents by the stat sizes and checks each slice against the file's sha256 (hashed
# on the host before the read), so a file that changed in between is refused, never shown
# as another's content.
#
# Hash first: stdin holds one line per path, `SIZE SHA256` of the content the controller
# wants there, or `-` (it needs the content: an edit in place, a removal, the state record;
# no stdin at all is all `-`). A regular file of exactly SIZE bytes is hashed (`sha256sum`,
# one per batch) and, when it hashes to SHA256, answered `=`: its content does not travel,
# the controller already holds it. The digests never leave this shell's memory: they come
# on stdin (never in argv, which every user of the host can list), and only `=` goes back.
#
# Files go in batches: of up to 7 under a POSIX sh (descriptors 3-9: it redirects one-digit
# descriptors only), of up to 100 under bash (script.rs runs this under bash when the host
# has it: a 54-file PBX is then one batch, one `stat` and one `sha256sum`, not eight). Each batch answers: one class line per path (`F` regular file, `=` regular file
# holding the wanted content, `M` missing, `E` something else, `L` a symbolic link (never
# followed), `O <folder>` its folder resolves outside the conf root, `B <size>` larger than
# LIMIT, `W` cannot be opened read-write by this login); `S`; one `owner group mode size`
# line per `=` and `owner group mode size sha256` per `F`; `C`; the `F` files' contents back to back; a `.` line. At most four
# processes per batch (stat, sha256sum, readlink, head; a batch of `=` files only starts
# the first two); the other checks are shell builtins.
set -f   # no globbing: nothing here names files by pattern
root=${1%/}
limit=$2
shift 2
if [ -L "$root" ]; then
    printf 'switchyard: the conf root %s is a symbolic link: set freeswitch_conf_root to the folder it points to\n' "$root" >&2
    exit 1
fi
if ! cd -P -- "$root" 2>/dev/null; then
    # No conf root: nothing under it exists. `R` first says the root itself is missing
    # (a mistyped freeswitch_conf_root: switchyard refuses to create a tree there).
    [ -e "$root" ] || echo R
    for f do echo M; done
    printf 'S\nC\n.\n'
    exit 0
fi
root=$PWD

# batch PATH...: up to $size paths, answered as described above.
batch() {
    nl='
'
    cls=
    fd=3
    i=0
    for f do
        i=$((i + 1))
        IFS= read -r w || w=-
        eval "w_$i=\$w"
        d=${f%/*}
        # The nearest existing ancestor of the file's folder, resolved.
        while ! cd -P -- "${d:-/}" 2>/dev/null; do d=${d%/*}; done
        case $PWD/ in
            "$root"/*) ;;
            *)
                cls="$cls O"
                eval "o_$i=\$PWD"
                continue ;;
        esac
        n=${f##*/}
        if [ "$d" != "${f%/*}" ]; then cls="$cls M"   # its folder does not exist
        elif [ -L "$n" ]; then cls="$cls L"
        elif [ ! -e "$n" ]; then cls="$cls M"
        elif [ ! -f "$n" ]; then cls="$cls E"
        elif { eval "command exec $fd<>\"\$n\""; } 2>/dev/null; then
            # The name may have been swapped for a link between the checks and the open
            # (`<>` follows it): what was opened must be the file the name holds now, and
            # that must not be a link, or it is not read (`E`, no content travels). A
            # first, cheap look; the proof before content travels is the descriptor's own
            # path (`readlink`, below).
            # -ef: not POSIX, but in dash, bash, busybox and ksh (as common.sh's walk).
            # shellcheck disable=SC3013
            if [ ! -L "$n" ] && [ "$n" -ef "/dev/fd/$fd" ]; then
                cls="$cls ?$fd"
                eval "e_$fd=\$PWD/\$n"
                fd=$((fd + 1))
            else
                eval "exec $fd<&-"
                cls="$cls E"
            fi
        else cls="$cls W"
        fi
    done
    top=$fd
    set --
    k=3
    while [ $k -lt "$top" ]; do set -- "$@" "/dev/fd/$k"; k=$((k + 1)); done
    meta=
    if [ $# -gt 0 ]; then meta=$(stat -L -c '%f %s %U %G %a' -- "$@") || exit 1; fi
    # shellcheck disable=SC2086
    set -- $meta
    out=
    hashes=
    i=0
    for c in $cls; do
        i=$((i + 1))
        case $c in
            '?'*)
                fd=${c#?}
                if [ $((0x$1 & 61440)) -ne 32768 ]; then
                    out="${out}E
"
                    eval "exec $fd<&-"
                elif [ "$2" -gt "$limit" ]; then
                    out="${out}B $2
"
                    eval "exec $fd<&-"
                else
                    # `F FD`, or `H FD` to be hashed first; `z_FD`: its size.
                    eval "w=\$w_$i; z_$fd=\$2"
                    if [ "${w%% *}" = "$2" ]; then
                        out="${out}H $fd
"
                        hashes="$hashes /dev/fd/$fd"
                        eval "h_$fd=\${w#* }"
                    else
                        out="${out}F $fd
"
                        hashes="$hashes /dev/fd/$fd"
                    fi
                    eval "s_$fd=\"\$3 \$4 \$5 \$2\""
                fi
                shift 5 ;;
            O)
                eval "p=\$o_$i"
                case $p in
                    *'
'*) p='(a folder whose name holds a line break)' ;;
                esac
                out="${out}O $p
" ;;
            *)
                out="$out$c
" ;;
        esac
    done
    # `HASH  /dev/fd/N` lines, of the files to read too (their stat line carries it, so that
    # the controller checks each file's slice of the contents against it: two files that
    # grow and shrink together between the stat and the read can shift bytes from one into
    # the other's place, and the sizes alone would not say so); a file sha256sum could not
    # read is simply not `=`, and not read.
    sums=
    # shellcheck disable=SC2086
    if [ -n "$hashes" ]; then sums=$(sha256sum -- $hashes 2>/dev/null); fi
    # `=` or `F` per file: `r_FD`; the files to read and the names they must be at.
    reads=
    want=
    most=0
    h=
    x=
    z=0
    IFS=$nl
    for l in $sums; do eval "x_${l##*/fd/}=\${l%%  *}"; done
    for c in $out; do
        case $c in
            [FH]' '*)
                fd=${c#? }
                eval "h=\${h_$fd-}; x=\${x_$fd-}; z=\$z_$fd"
                if [ "${c%% *}" = H ] && [ "$x" = "$h" ]; then
                    eval "r_$fd=="
                elif [ -z "$x" ]; then
                    eval "r_$fd=E"
                else
                    eval "r_$fd=F; want=\$want\$e_$fd\$nl"
                    reads="$reads /dev/fd/$fd"
                    [ "$z" -le "$most" ] || most=$z
                fi ;;
        esac
    done
    # The `-L` and `-ef` looks above are two looks, not one: the name can be the file at the
    # first and a link to the file that was opened at the second. Before any content
    # travels, the kernel's own path of each opened file settles it: it must be the very
    # name, in its resolved folder, that was checked, or nothing of this batch is read (`E`).
    # A line per descriptor, then `.`: a path holding a line break cannot line up. (A `=`
    # file needs no such proof: its content is what the controller sent the digest of.)
    IFS=' 	
'
    bad=
    if [ -n "$reads" ]; then
        # shellcheck disable=SC2086
        real=$(readlink -- $reads 2>/dev/null; echo .)
        if [ "$real" != "$want." ]; then
            # busybox's readlink (and coreutils' before 8.16) takes one name: ask per file.
            # shellcheck disable=SC2086
            real=$(for r in $reads; do readlink -- "$r" 2>/dev/null || echo; done; echo .)
        fi
        if [ "$real" != "$want." ]; then
            bad=1
            reads=
        fi
    fi
    stats=
    r=
    IFS=$nl
    for c in $out; do
        case $c in
            [FH]' '*)
                fd=${c#? }
                eval "r=\$r_$fd"
                if [ "$r" = E ] || { [ "$r" = F ] && [ -n "$bad" ]; }; then
                    printf 'E\n'
                elif [ "$r" = F ]; then
                    printf 'F\n'
                    eval "stats=\"\$stats\$s_$fd \$x_$fd\$nl\""
                else
                    printf '=\n'
                    eval "stats=\$stats\$s_$fd\$nl"
                fi ;;
            *) printf '%s\n' "$c" ;;
        esac
    done
    IFS=' 	
'
    printf 'S\n%sC\n' "$stats"
    # shellcheck disable=SC2086
    if [ -n "$reads" ]; then head -q -c $((most + 1)) -- $reads; fi
    echo .
    # Descriptors closed; their numbers' values forgotten (the next batch reuses them).
    k=3
    while [ $k -lt "$top" ]; do
        eval "exec $k<&-"
        unset "h_$k" "x_$k"
        k=$((k + 1))
    done
}

size=7
if [ -n "${BASH_VERSION-}" ]; then size=100; fi
while [ $# -gt 0 ]; do
    # The next $size paths as the batch's arguments (`${10}`: braces past 9, in any sh).
    args=
    k=1
    while [ $k -le $size ] && [ $k -le $# ]; do
        args="$args \"\${$k}\""
        k=$((k + 1))
    done
    taken=$((k - 1))   # (batch has variables of its own, k among them)
    eval "batch $args"
    shift $taken
done
