package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by the Open functions for a store whose
// schema was migrated by a newer binary than this one.
var ErrSchemaTooNew = errors.New("store schema is newer than this binary")

// migrations are the schema versions in order: migrations[i] takes a
// store from version i to version i+1. Never edit one that has shipped;
// append a new one. {time} is the column type of a point in time
// (SQLite: INTEGER unix nanoseconds, PostgreSQL: TIMESTAMPTZ) and {id}
// an auto-incremented primary key.
var migrations = [][]string{
	// 1: hosts, their categories, names and rules, evidence and the
	// daily timeline.
	{
		`CREATE TABLE hosts (
			ip               TEXT PRIMARY KEY,
			mac              TEXT NOT NULL DEFAULT '',
			hostname         TEXT NOT NULL DEFAULT '',
			owner            TEXT NOT NULL DEFAULT '',
			site             TEXT NOT NULL DEFAULT '',
			deadline         {time},
			observer         TEXT NOT NULL DEFAULT '',
			first_seen       {time},
			last_seen        {time},
			contacts         BIGINT NOT NULL DEFAULT 0,
			bytes_out        BIGINT NOT NULL DEFAULT 0,
			bytes_in         BIGINT NOT NULL DEFAULT 0,
			packets_out      BIGINT NOT NULL DEFAULT 0,
			packets_in       BIGINT NOT NULL DEFAULT 0,
			flows            BIGINT NOT NULL DEFAULT 0,
			names_cut        BIGINT NOT NULL DEFAULT 0,
			last_time        {time},
			last_protocol    TEXT NOT NULL DEFAULT '',
			last_name        TEXT NOT NULL DEFAULT '',
			last_destination TEXT NOT NULL DEFAULT '',
			last_rule        TEXT NOT NULL DEFAULT '',
			last_reason      TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX hosts_last_seen ON hosts (last_seen)`,
		`CREATE INDEX hosts_site ON hosts (site)`,
		`CREATE TABLE host_categories (
			ip          TEXT NOT NULL REFERENCES hosts (ip) ON DELETE CASCADE,
			category    TEXT NOT NULL,
			first_seen  {time},
			last_seen   {time},
			contacts    BIGINT NOT NULL DEFAULT 0,
			bytes_out   BIGINT NOT NULL DEFAULT 0,
			bytes_in    BIGINT NOT NULL DEFAULT 0,
			packets_out BIGINT NOT NULL DEFAULT 0,
			packets_in  BIGINT NOT NULL DEFAULT 0,
			flows       BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (ip, category)
		)`,
		`CREATE INDEX host_categories_category ON host_categories (category)`,
		`CREATE TABLE host_names (
			ip   TEXT NOT NULL REFERENCES hosts (ip) ON DELETE CASCADE,
			name TEXT NOT NULL,
			PRIMARY KEY (ip, name)
		)`,
		`CREATE TABLE host_rules (
			ip   TEXT NOT NULL REFERENCES hosts (ip) ON DELETE CASCADE,
			rule TEXT NOT NULL,
			PRIMARY KEY (ip, rule)
		)`,
		// evidence and daily are time series pruned after the retention
		// period; they carry no foreign key so that a batch whose rows
		// name a host it does not also carry is still written.
		`CREATE TABLE evidence (
			id          {id},
			ip          TEXT NOT NULL,
			time        {time} NOT NULL,
			category    TEXT NOT NULL DEFAULT '',
			protocol    TEXT NOT NULL DEFAULT '',
			name        TEXT NOT NULL DEFAULT '',
			destination TEXT NOT NULL DEFAULT '',
			rule        TEXT NOT NULL DEFAULT '',
			reason      TEXT NOT NULL DEFAULT '',
			observer    TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX evidence_time ON evidence (time)`,
		`CREATE INDEX evidence_ip ON evidence (ip, time)`,
		`CREATE TABLE daily (
			ip       TEXT NOT NULL,
			day      {time} NOT NULL,
			category TEXT NOT NULL,
			contacts BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (ip, day, category)
		)`,
		`CREATE INDEX daily_day ON daily (day)`,
	},
}

// latestSchema is the version this binary migrates stores to.
var latestSchema = len(migrations)

// migrate brings the store to latestSchema in one transaction, and
// refuses a store at a newer version.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.migrationLock != "" {
		// Sensors of a fleet starting together migrate one at a time.
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at {time} NOT NULL
	)`)); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if v > latestSchema {
		return fmt.Errorf("%w: the store is at version %d, this binary knows versions up to %d; run a newer phonehome",
			ErrSchemaTooNew, v, latestSchema)
	}
	if v == latestSchema {
		return nil
	}
	now := d.timeArg(time.Now())
	for ; v < latestSchema; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, d.ddl(stmt)); err != nil {
				return fmt.Errorf("migration %d: %s: %w", v+1, firstLine(stmt), err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), v+1, now); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return tx.Commit()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "("))
}
