package report

import (
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Status is where a host stands against its removal deadline as of the
// report's Now. The four values are a contract (DESIGN.md); see Classify.
type Status string

// The statuses, worst first.
const (
	// NeverRemoved: the deadline has passed, the host was seen before it,
	// contacted at or after it, and did so within the quiet period: the
	// software was never removed.
	NeverRemoved Status = "never-removed"
	// StillPhoningHome: the host contacted within the quiet period and
	// was first seen at or after its (passed) deadline, e.g. reinstalled,
	// newly on the network, or first seen by a sensor deployed after the
	// deadline; or its deadline is still ahead (not yet due; the row's
	// AfterDeadline, JSON after_deadline, is then false).
	StillPhoningHome Status = "still-phoning-home"
	// Removed: no contact since the deadline passed, or none during the
	// whole quiet period before Now. The last contact says when it stopped.
	Removed Status = "removed"
	// NoDeadline: no removal deadline is set for the host.
	NoDeadline Status = "no-deadline"
)

// Statuses lists the statuses worst first, the order of summaries.
func Statuses() []Status { return []Status{NeverRemoved, StillPhoningHome, Removed, NoDeadline} }

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case NeverRemoved, StillPhoningHome, Removed, NoDeadline:
		return true
	}
	return false
}

// rank orders statuses worst first (for sorting by status).
func (s Status) rank() int {
	switch s {
	case NeverRemoved:
		return 0
	case StillPhoningHome:
		return 1
	case Removed:
		return 2
	}
	return 3
}

// DefaultQuiet is the quiet period after which a host that stopped
// contacting is counted as removed.
const DefaultQuiet = 14 * 24 * time.Hour

// Classify says where h stands against its removal deadline D as of now,
// with L its last contact and F its first. The first rule that applies
// wins:
//
//  1. no deadline set: no-deadline
//  2. silent for the whole quiet period (now − L ≥ quiet): removed
//  3. deadline passed (D ≤ now), not heard from since (L < D): removed
//  4. deadline passed, seen before it (F < D), so still after it: never-removed
//  5. otherwise, first seen at or after a passed deadline, or the deadline
//     still ahead: still-phoning-home
//
// A contact exactly at the deadline counts as after it, as in the
// inventory: the deadline is the first instant at which a contact is a
// violation. A host whose last contact is exactly quiet before now has
// been silent for the whole quiet period: removed. quiet <= 0 means
// DefaultQuiet. Whether the host was silent in between is not looked at:
// the inventory keeps first and last contact only (the daily counts of the
// report's timeline show the gaps).
func Classify(h *inventory.Host, now time.Time, quiet time.Duration) Status {
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	d := h.Deadline
	switch {
	case d.IsZero():
		return NoDeadline
	case now.Sub(h.LastSeen) >= quiet:
		return Removed
	case !d.After(now) && h.LastSeen.Before(d):
		return Removed
	case !d.After(now) && h.FirstSeen.Before(d):
		return NeverRemoved
	}
	return StillPhoningHome
}

// afterDeadline reports whether h's last contact came at or after its
// deadline.
func afterDeadline(h *inventory.Host) bool {
	return !h.Deadline.IsZero() && !h.LastSeen.Before(h.Deadline)
}
