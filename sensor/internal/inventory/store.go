package inventory

import (
	"context"
	"net/netip"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

// Store persists the inventory: SQLite for one sensor, PostgreSQL for a
// fleet sharing one inventory (package inventory/store). Writes are
// deltas merged into what is stored, so that several sensors can write
// the same host: first times take the minimum, last times the maximum,
// counts and bytes add up, names are a bounded union.
type Store interface {
	// Write merges one batch in a single transaction.
	Write(ctx context.Context, b *Batch) error
	// Hosts returns the stored hosts matching f, ordered by address,
	// with their categories, names and last evidence.
	Hosts(ctx context.Context, f Filter) ([]Host, error)
	// Daily returns contacts per host, UTC day and category matching f,
	// ordered by day (for the report's timeline).
	Daily(ctx context.Context, f Filter) ([]DayCount, error)
	// Prune deletes evidence and daily rows older than before and
	// returns how many rows went; host rows are kept.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// SchemaVersion is the migration version the store is at.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

// Batch is what changed since the last flush.
type Batch struct {
	Hosts    []HostDelta
	Evidence []EvidenceRow
	Daily    []DayCount
}

// Len is the number of rows in the batch.
func (b *Batch) Len() int { return len(b.Hosts) + len(b.Evidence) + len(b.Daily) }

// HostDelta is what one host gained since the last flush. Zero fields
// are "unchanged" (an empty MAC or Hostname never erases a stored one).
type HostDelta struct {
	IP        netip.Addr
	MAC       string
	Hostname  string
	Owner     string // from the asset file
	Site      string
	Deadline  time.Time // removal deadline in force for the host; zero: none
	Observer  string    // the sensor that saw it
	FirstSeen time.Time // of the contacts in this delta
	LastSeen  time.Time
	Contacts  uint64 // added
	Traffic   Traffic
	// Categories: first/last of this delta, counts and traffic added.
	Categories map[rules.Category]*Category
	Names      []string // names to add (the store keeps at most MaxNamesStored per host)
	Rules      []string // rule ids to add
	Last       Evidence // the newest evidence of the delta (zero Time: none)
}

// MaxNamesStored bounds the names a store keeps per host.
const MaxNamesStored = 256

// EvidenceRow is one matched contact kept for the report's detail and
// pruned after the retention period.
type EvidenceRow struct {
	IP       netip.Addr
	Time     time.Time
	Category rules.Category
	Evidence
	Observer string
}

// DayCount counts one host's contacts of one category on one UTC day
// (added to what is stored).
type DayCount struct {
	IP       netip.Addr
	Day      time.Time // UTC midnight
	Category rules.Category
	Contacts uint64
}

// Filter selects hosts for reports and the API. Zero fields select all.
type Filter struct {
	Since    time.Time      // last contact at or after
	Category rules.Category // contacted this category
	Site     string
}
