package store

import (
	"context"
	"net/url"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Postgres is a store in a PostgreSQL database shared by a fleet of
// sensors: each writes its deltas, merged row by row, so that every
// sensor's contacts add up.
type Postgres struct {
	db
}

var _ inventory.Store = (*Postgres)(nil)

// OpenPostgres connects to the database named by dsn (a postgres:// URL
// or key=value pairs, as libpq takes them) and migrates its schema.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	s := &Postgres{db: db{name: RedactDSN(dsn), d: postgresDialect}}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message redacts the password.
		return nil, s.errorf("parse DSN", err)
	}
	s.w = stdlib.OpenDB(*cfg)
	s.w.SetMaxOpenConns(4)
	s.w.SetMaxIdleConns(4)
	s.w.SetConnMaxIdleTime(5 * time.Minute)
	s.r = s.w
	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return nil, s.errorf("connect", err)
	}
	if err := s.open(ctx, false); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN is dsn without its password, for messages.
func RedactDSN(dsn string) string {
	if IsPostgres(dsn) {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
		return "postgres://(unparsable URL)"
	}
	return passwordKV.ReplaceAllString(dsn, "${1}xxxxx")
}

// Write merges one batch in a single transaction. A deadlock with
// another sensor's write is retried.
func (s *Postgres) Write(ctx context.Context, b *inventory.Batch) error { return s.write(ctx, b) }

// Hosts returns the stored hosts matching f, ordered by address, read
// in one snapshot.
func (s *Postgres) Hosts(ctx context.Context, f inventory.Filter) ([]inventory.Host, error) {
	return s.hosts(ctx, f)
}

// Daily returns contacts per host, UTC day and category matching f,
// ordered by day, then address and category.
func (s *Postgres) Daily(ctx context.Context, f inventory.Filter) ([]inventory.DayCount, error) {
	return s.daily(ctx, f)
}

// Prune deletes evidence older than before and the daily rows of days
// before the UTC day holding before; hosts are kept.
func (s *Postgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, before)
}

// SchemaVersion is the migration version the store is at.
func (s *Postgres) SchemaVersion(ctx context.Context) (int, error) { return s.schemaVersion(ctx) }

// Close closes the connections.
func (s *Postgres) Close() error { return s.close() }
