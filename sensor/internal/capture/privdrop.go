package capture

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// ErrRunAs wraps every error about --run-as that is the user's to fix.
var ErrRunAs = errors.New("--run-as")

// RunAs is the user (and groups) the sensor switches to once its sockets
// are open (--run-as USER[:GROUP]).
type RunAs struct {
	Spec   string
	UID    int
	GID    int
	Groups []int // supplementary groups, the primary one included
}

// ParseRunAs resolves USER or USER:GROUP, by name or number. A user not in
// the password database needs a number and a group. Root is refused: it
// would drop nothing.
func ParseRunAs(spec string) (RunAs, error) {
	r := RunAs{Spec: spec}
	bad := func(format string, a ...any) (RunAs, error) {
		return RunAs{}, fmt.Errorf("%w %q: %s", ErrRunAs, spec, fmt.Sprintf(format, a...))
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" {
		return bad("no user")
	}
	if hasGroup && group == "" {
		return bad("no group after the colon")
	}
	var u *user.User
	var err error
	if _, nerr := strconv.Atoi(name); nerr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	switch {
	case err == nil:
		r.UID, _ = strconv.Atoi(u.Uid)
		r.GID, _ = strconv.Atoi(u.Gid)
		ids, _ := u.GroupIds()
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil {
				r.Groups = append(r.Groups, n)
			}
		}
	default:
		uid, nerr := strconv.Atoi(name)
		if nerr != nil {
			return bad("no such user")
		}
		if uid < 0 {
			return bad("negative user id")
		}
		if !hasGroup {
			return bad("user id %d is not in the password database: give its group too (UID:GID)", uid)
		}
		r.UID, r.GID = uid, -1
	}
	if hasGroup {
		if gid, nerr := strconv.Atoi(group); nerr == nil {
			if gid < 0 {
				return bad("negative group id")
			}
			r.GID = gid
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return bad("no such group %q", group)
			}
			r.GID, _ = strconv.Atoi(g.Gid)
		}
	}
	if r.UID == 0 {
		return bad("is root: nothing would be dropped")
	}
	found := false
	for _, g := range r.Groups {
		found = found || g == r.GID
	}
	if !found {
		r.Groups = append(r.Groups, r.GID)
	}
	return r, nil
}
