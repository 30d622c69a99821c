# Gather owner, group, mode and content of every managed file in one command.
# Arguments: CONF_ROOT PATH... (absolute paths under the conf root).
#
# One class line per path: `F` regular file, `M` missing, `E` something else, `L` a symbolic
# link (never followed), `O <folder>` its folder resolves outside the conf root. Then `S`,
# one `owner group mode size` line per regular file, `C`, and the files' contents back to
# back: two processes per host (stat, cat) whatever the number of files, plus none for the
# checks (cd, pwd and tests are shell builtins).
root=${1%/}
shift
if [ -L "$root" ]; then
    printf 'switchyard: the conf root %s is a symbolic link: set freeswitch_conf_root to the folder it points to\n' "$root" >&2
    exit 1
fi
if ! cd -P -- "$root" 2>/dev/null; then
    # No conf root yet: nothing under it exists.
    for f do echo M; done
    echo S
    echo C
    exit 0
fi
root=$PWD
for f do
    shift
    d=${f%/*}
    # The nearest existing ancestor of the file's folder, resolved.
    while ! cd -P -- "${d:-/}" 2>/dev/null; do d=${d%/*}; done
    case $PWD/ in
        "$root"/*)
            if [ -L "$f" ]; then echo L
            elif [ -f "$f" ]; then echo F; set -- "$@" "$f"
            elif [ -e "$f" ]; then echo E
            else echo M
            fi ;;
        *) printf 'O %s\n' "$PWD" ;;
    esac
done
echo S
[ $# -eq 0 ] || stat -c '%U %G %a %s' -- "$@" || exit 1
echo C
[ $# -eq 0 ] || exec cat -- "$@"
