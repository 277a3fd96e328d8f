package geo

import (
	"context"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the current DB and replaces it on Reload. DB, Reload,
// Stats and Watch are safe for concurrent use.
type Reloader struct {
	// OnReload, if set, is called by Watch after every reload it starts,
	// with nil or the error. Set it before calling Watch.
	OnReload func(err error)

	cfg         Config
	db          atomic.Pointer[DB]
	mu          sync.Mutex // serialises reloads
	reloads     atomic.Uint64
	failures    atomic.Uint64
	lastSuccess atomic.Int64 // Unix nanoseconds
}

// NewReloader opens the databases of cfg.
func NewReloader(cfg Config) (*Reloader, error) {
	db, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	r := &Reloader{cfg: cfg}
	r.db.Store(db)
	r.lastSuccess.Store(time.Now().UnixNano())
	return r, nil
}

// DB returns the current DB. Callers keep using the DB they got for as long
// as they like; a reload does not change it.
func (r *Reloader) DB() *DB {
	return r.db.Load()
}

// Reload re-opens every file of the Config. On error the current DB stays
// and the error, which names the file, is returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloads.Add(1)
	db, err := Open(r.cfg)
	if err != nil {
		r.failures.Add(1)
		return err
	}
	r.db.Store(db)
	r.lastSuccess.Store(time.Now().UnixNano())
	return nil
}

// ReloadStats counts reloads since NewReloader.
type ReloadStats struct {
	// Reloads counts reload attempts, failed ones included.
	Reloads uint64
	// Failures counts the attempts that kept the old DB.
	Failures uint64
	// LastSuccess is when a DB was last opened (by NewReloader or Reload).
	LastSuccess time.Time
}

// Stats returns the reload counters.
func (r *Reloader) Stats() ReloadStats {
	return ReloadStats{
		Reloads:     r.reloads.Load(),
		Failures:    r.failures.Load(),
		LastSuccess: time.Unix(0, r.lastSuccess.Load()),
	}
}

// DefaultWatchInterval is what Watch uses for a non-positive interval.
const DefaultWatchInterval = time.Minute

// Watch polls the identity (device, inode, size, modification time) of the
// configured files every interval and reloads when one differs from the
// file the current DB was read from, as after geoipupdate's atomic rename.
// After a failed reload it retries only once the files change again, so a
// missing or corrupt file is reported once, not every interval. The embedded
// database is not watched. Watch returns when ctx is done.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	paths := make([]string, 0, 2)
	for _, p := range []string{r.cfg.CountryPath, r.cfg.ASNPath} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed map[string]fileID // the files as they were at the last failed reload
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := make(map[string]fileID, len(paths))
		for _, p := range paths {
			var id fileID // zero: cannot stat
			if fi, err := os.Stat(p); err == nil {
				id = idOf(fi)
			}
			now[p] = id
		}
		if maps.Equal(now, r.DB().files()) || (failed != nil && maps.Equal(now, failed)) {
			continue
		}
		err := r.Reload()
		failed = nil
		if err != nil {
			failed = now
		}
		if r.OnReload != nil {
			r.OnReload(err)
		}
	}
}
