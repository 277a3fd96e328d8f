//go:build !linux

package capture

import "fmt"

// Drop is implemented on Linux only.
func (r RunAs) Drop() error {
	return fmt.Errorf("%w %q: not supported on this system", ErrRunAs, r.Spec)
}
