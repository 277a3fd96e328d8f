package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory/store"
)

// defaultStoragePath is where `run` keeps its inventory unless told
// otherwise (DESIGN.md: phonehome.db in the working directory). Tests
// set it to "" (no store) and pass --storage.path when they want one.
var defaultStoragePath = "phonehome.db"

// storageArgs are the flags of the inventory store and removal policy.
type storageArgs struct {
	path, dsn      string
	flushEvery     time.Duration
	retention      time.Duration
	deadline       string
	subnetDeadline []string
	assets         string

	// flusher is set by persist, for the metrics (sensor/web.go).
	flusher *inventory.Flusher
}

func addStorageFlags(c *kingpin.CmdClause, s *storageArgs, policy bool) {
	c.Flag("storage.path", "SQLite inventory file, created on first run (\"\" for none).").Default(defaultStoragePath).StringVar(&s.path)
	c.Flag("storage.dsn", "PostgreSQL inventory shared by a fleet (postgres://…); overrides --storage.path.").StringVar(&s.dsn)
	if policy {
		c.Flag("storage.flush-interval", "How often inventory changes are written (new hosts and crossed deadlines at once).").Default("5s").DurationVar(&s.flushEvery)
		c.Flag("storage.retention", "Evidence older than this is pruned; host rows are kept.").Default("400d").DurationVar(&s.retention)
		c.Flag("removal.deadline", "Removal deadline for every host (YYYY-MM-DD): contacts after it are 'still phoning home'.").StringVar(&s.deadline)
		c.Flag("removal.deadline-for", "Deadline of one network, CIDR=YYYY-MM-DD; repeatable; the most specific wins.").StringsVar(&s.subnetDeadline)
		c.Flag("assets", "Asset CSV: ip|mac,hostname,owner,site,removal_date (a host's date overrides the others).").StringVar(&s.assets)
	}
}

// where names the store for messages, without a password.
func (s *storageArgs) where() string {
	if s.dsn != "" {
		return store.RedactDSN(s.dsn)
	}
	return s.path
}

// openStore opens the configured store; nil when none is configured.
func openStore(ctx context.Context, s *storageArgs) (inventory.Store, error) {
	switch {
	case s.dsn != "":
		return store.Open(ctx, s.dsn)
	case s.path != "":
		return store.Open(ctx, s.path)
	}
	return nil, nil
}

// policy builds the deadlines and assets from the flags.
func (s *storageArgs) policy() (*inventory.Deadlines, *inventory.Assets, error) {
	var global time.Time
	if s.deadline != "" {
		d, err := inventory.ParseDate(s.deadline)
		if err != nil {
			return nil, nil, usage("--removal.deadline: %v", err)
		}
		global = d
	}
	var subnets []inventory.SubnetDeadline
	for _, v := range s.subnetDeadline {
		sd, err := inventory.ParseSubnetDeadline(v)
		if err != nil {
			return nil, nil, usage("--removal.deadline-for %v", err)
		}
		subnets = append(subnets, sd)
	}
	var assets *inventory.Assets
	if s.assets != "" {
		a, err := inventory.LoadAssets(s.assets)
		if err != nil {
			return nil, nil, usageError{err}
		}
		assets = a
	}
	return inventory.NewDeadlines(global, subnets), assets, nil
}

// persist runs the flusher for the length of a run; the returned stop
// flushes what is left, prunes old evidence and closes the store.
func persist(st inventory.Store, inv *inventory.Inventory, s *storageArgs, log *slog.Logger) (stop func() (inventory.FlushStats, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	f := inventory.NewFlusher(inv, st, s.flushEvery, log)
	s.flusher = f
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	return func() (inventory.FlushStats, error) {
		cancel()
		<-done
		var err error
		if fs := f.Stats(); fs.Pending > 0 {
			err = fmt.Errorf("inventory %s: %d batches could not be written: %w", s.where(), fs.Pending, fs.LastError)
		}
		if s.retention > 0 {
			pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
			if n, perr := st.Prune(pctx, time.Now().Add(-s.retention)); perr != nil {
				log.Warn("inventory prune failed", "err", perr)
			} else if n > 0 {
				log.Info("inventory pruned", "rows", n)
			}
			pcancel()
		}
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("inventory %s: %w", s.where(), cerr)
		}
		return f.Stats(), err
	}
}
