//go:build linux

package capture

import (
	"fmt"
	"os"
	"syscall"
)

// Drop switches the whole process (every thread) to the user and groups,
// which drops every capability; open sockets and files stay usable. It
// needs root, or to be that user already.
func (r RunAs) Drop() error {
	if os.Geteuid() != 0 {
		if os.Geteuid() == r.UID && os.Getegid() == r.GID {
			return nil
		}
		return fmt.Errorf("%w %q: switching user needs root (running as uid %d)", ErrRunAs, r.Spec, os.Geteuid())
	}
	if err := syscall.Setgroups(r.Groups); err != nil {
		return fmt.Errorf("%w %q: setgroups: %w", ErrRunAs, r.Spec, err)
	}
	if err := syscall.Setgid(r.GID); err != nil {
		return fmt.Errorf("%w %q: setgid(%d): %w", ErrRunAs, r.Spec, r.GID, err)
	}
	if err := syscall.Setuid(r.UID); err != nil {
		return fmt.Errorf("%w %q: setuid(%d): %w", ErrRunAs, r.Spec, r.UID, err)
	}
	// The way back must be closed.
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("%w %q: still able to become root after setuid(%d)", ErrRunAs, r.Spec, r.UID)
	}
	return nil
}
