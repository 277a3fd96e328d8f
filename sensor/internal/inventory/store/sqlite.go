package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// busyTimeout is how long a SQLite writer waits for another's lock
// (another process on the same file) before it fails.
const busyTimeout = 10 * time.Second

// SQLite is a store in one SQLite file: WAL journal, synchronous=NORMAL
// (a committed write survives a crash of the process; a power cut may
// lose the last transactions but never corrupts the file), one writer
// connection and a few readers, which do not block it.
type SQLite struct {
	db
	path string
}

var _ inventory.Store = (*SQLite)(nil)

// OpenSQLite opens the store at path, creating the file (mode 0640) and
// its schema on first use; the directory must exist.
func OpenSQLite(path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("inventory store: empty SQLite path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("inventory store sqlite %s: %w", path, err)
	}
	s := &SQLite{db: db{name: "sqlite " + path, d: sqliteDialect}, path: abs}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil {
		return nil, s.errorf("directory", err)
	} else if !fi.IsDir() {
		return nil, s.errorf("directory", fmt.Errorf("%s is not a directory", dir))
	}
	// Create the file ourselves for its mode; SQLite gives its -wal and
	// -shm files the same.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, s.errorf("create", err)
	}
	f.Close()

	pragmas := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		for _, p := range extra {
			k, v, _ := strings.Cut(p, "=")
			q.Add(k, v)
		}
		u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
		return u.String()
	}
	// BEGIN IMMEDIATE: a write transaction takes the write lock at once,
	// so that it waits (busy timeout) rather than failing on upgrade.
	s.w, err = sql.Open("sqlite", pragmas("_pragma=journal_mode(WAL)", "_txlock=immediate"))
	if err != nil {
		return nil, s.errorf("open", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	ctx := context.Background()
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.w.Close()
		return nil, s.errorf("open", err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.w.Close()
		return nil, s.errorf("open", fmt.Errorf("journal mode is %q, not WAL (a file system without shared memory?)", mode))
	}
	s.r, err = sql.Open("sqlite", pragmas("_pragma=query_only(1)"))
	if err != nil {
		s.w.Close()
		return nil, s.errorf("open", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if err := s.open(ctx, true); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// Path is the store's file.
func (s *SQLite) Path() string { return s.path }

// Write merges one batch in a single transaction.
func (s *SQLite) Write(ctx context.Context, b *inventory.Batch) error { return s.write(ctx, b) }

// Hosts returns the stored hosts matching f, ordered by address.
func (s *SQLite) Hosts(ctx context.Context, f inventory.Filter) ([]inventory.Host, error) {
	return s.hosts(ctx, f)
}

// Daily returns contacts per host, UTC day and category matching f,
// ordered by day, then address and category.
func (s *SQLite) Daily(ctx context.Context, f inventory.Filter) ([]inventory.DayCount, error) {
	return s.daily(ctx, f)
}

// Prune deletes evidence older than before and the daily rows of days
// before the UTC day holding before; hosts are kept.
func (s *SQLite) Prune(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, before)
}

// SchemaVersion is the migration version the store is at.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) { return s.schemaVersion(ctx) }

// Close closes the store.
func (s *SQLite) Close() error { return s.close() }
