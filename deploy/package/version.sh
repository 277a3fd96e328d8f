#!/bin/sh
# Prints a package version valid for both Debian and RPM (characters
# [A-Za-z0-9.+~], starting with a digit) from `git describe --tags
# --always`, or from $1:
#   v1.2.3                -> 1.2.3
#   v1.2.3-4-gabc1234     -> 1.2.3+git4.abc1234      (after 1.2.3, before 1.2.4)
#   v1.2.3-rc1            -> 1.2.3~rc1               (before 1.2.3)
#   v1.2.3-rc1-4-gabc1234 -> 1.2.3~rc1+git4.abc1234
#   abc1234               -> 0.0.0~gitabc1234        (no tag: before any release)
#   anything else         -> 0.0.0~git<it, reduced to those characters>
set -eu
d=${1-$(git describe --tags --always 2>/dev/null || echo unknown)}
d=${d#v}
clean() { printf '%s' "$1" | tr -- '-_/' '~..' | tr -cd 'A-Za-z0-9.+~'; }
case $d in
[0-9]*)
	# The commits since the tag and the hash, if any.
	since=$(printf '%s' "$d" | sed -nE 's/.*-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/p')
	base=$(printf '%s' "$d" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
	printf '%s%s\n' "$(clean "$base")" "$since"
	;;
*)
	printf '0.0.0~git%s\n' "$(clean "$d" | tr '~' '.')"
	;;
esac
