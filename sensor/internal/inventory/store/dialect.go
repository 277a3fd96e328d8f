package store

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// dialect holds what differs between the engines; queries are written
// once, in the SQLite/PostgreSQL common subset, with ? placeholders and
// LEAST/GREATEST, and rebound per engine.
type dialect struct {
	name          string
	dollar        bool // $1 placeholders (PostgreSQL) rather than ?
	scalarMinMax  bool // min()/max() for LEAST/GREATEST (SQLite)
	nanos         bool // times as INTEGER unix nanoseconds (SQLite), else TIMESTAMPTZ
	types         *strings.Replacer
	migrationLock string // run first in the migration transaction
	readTx        *sql.TxOptions
}

var sqliteDialect = &dialect{
	name:         "sqlite",
	scalarMinMax: true,
	nanos:        true,
	types:        strings.NewReplacer("{time}", "INTEGER", "{id}", "INTEGER PRIMARY KEY"),
	readTx:       &sql.TxOptions{ReadOnly: true},
}

var postgresDialect = &dialect{
	name:   "postgres",
	dollar: true,
	types:  strings.NewReplacer("{time}", "TIMESTAMPTZ", "{id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	// Any constant, the same for every sensor: "phonehome" in ASCII.
	migrationLock: `SELECT pg_advisory_xact_lock(7020584355524929893)`,
	// One snapshot for the several queries that read hosts.
	readTx: &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
}

// rebind turns a query written with ? placeholders and LEAST/GREATEST
// into the engine's own. Queries hold no ? inside string literals.
func (d *dialect) rebind(q string) string {
	if d.scalarMinMax {
		q = strings.ReplaceAll(q, "LEAST(", "min(")
		q = strings.ReplaceAll(q, "GREATEST(", "max(")
	}
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// ddl fills in the engine's column types.
func (d *dialect) ddl(q string) string { return d.types.Replace(q) }

// timeArg is a point in time as the engine stores it; the zero time is
// NULL.
func (d *dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.nanos {
		return t.UnixNano()
	}
	return t.UTC()
}

// retryable reports whether a failed write transaction may be run
// again: PostgreSQL deadlocks and serialisation failures between
// sensors writing the same rows.
func (d *dialect) retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// timeCol scans a time column of either engine: NULL is the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.Unix(0, v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return errors.New("time column: unexpected type")
	}
	return nil
}

// countCol scans a BIGINT count into a uint64.
type countCol struct{ n *uint64 }

func (c countCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.n = 0
	case int64:
		*c.n = uint64(max(v, 0))
	case float64: // SQLite turns an overflowing sum into REAL
		*c.n = uint64(max(v, 0))
	default:
		return errors.New("count column: unexpected type")
	}
	return nil
}

// count is a uint64 as a BIGINT argument, clamped.
func count(u uint64) int64 {
	if u > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(u)
}

// text is a string as stored: UTF-8 text without NUL, which PostgreSQL
// requires; SQLite stores the same so that both engines give back the
// same. Invalid bytes and NULs become U+FFFD. The sensor escapes what
// it takes from the wire, so this changes nothing in practice.
func text(s string) string {
	if !strings.ContainsRune(s, 0) && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
