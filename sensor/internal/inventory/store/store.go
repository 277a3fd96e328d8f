// Package store persists the inventory (inventory.Store): SQLite for
// one sensor, PostgreSQL for a fleet of sensors sharing one inventory.
//
// Both engines have the same schema, migrated at open, and run the same
// queries. Writes are deltas merged into what is stored with
// INSERT … ON CONFLICT … DO UPDATE: first times take the minimum, last
// times the maximum, counts and bytes add up, names are a bounded union,
// so several sensors may write the same host at once. A batch is one
// transaction, its rows written in address order (sensors writing the
// same hosts lock them in the same order; a PostgreSQL deadlock or
// serialisation failure is retried). SQLite runs statements prepared
// once; PostgreSQL gets the whole transaction as one pipelined batch.
//
// A host keeps at most inventory.MaxNamesStored names; names_cut
// (Host.NamesCut) counts the new names refused beyond that, once per
// batch that brought them.
//
// Times are stored in UTC: INTEGER unix nanoseconds in SQLite,
// TIMESTAMPTZ (microseconds) in PostgreSQL. Addresses are text in
// netip's canonical form (IPv4-mapped IPv6 addresses unmapped). Strings
// are stored as UTF-8 text: invalid bytes and NULs become U+FFFD (the
// sensor escapes what it takes from the wire, so they are printable
// ASCII already).
package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Open opens the store named by pathOrDSN: a postgres:// or
// postgresql:// URL is a PostgreSQL database, anything else the path of
// a SQLite file.
func Open(ctx context.Context, pathOrDSN string) (inventory.Store, error) {
	if IsPostgres(pathOrDSN) {
		return OpenPostgres(ctx, pathOrDSN)
	}
	return OpenSQLite(pathOrDSN)
}

// IsPostgres reports whether Open takes pathOrDSN for a PostgreSQL URL.
func IsPostgres(pathOrDSN string) bool {
	l := strings.ToLower(pathOrDSN)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// The statements of a write: indexes into stmtText, db.sqls and db.stmts.
const (
	stUpsertHost = iota
	stUpsertCategory
	stInsertName
	stCountCut
	stInsertRule
	stInsertEvidence
	stUpsertDaily
	nStmts
)

// Taking the delta's MAC, hostname and observer when they are set and
// the delta saw the host last; the last evidence when it is newer.
const (
	deltaNewer = `(excluded.last_seen IS NOT NULL AND (hosts.last_seen IS NULL OR excluded.last_seen >= hosts.last_seen))`
	lastNewer  = `(excluded.last_time IS NOT NULL AND (hosts.last_time IS NULL OR excluded.last_time >= hosts.last_time))`
)

func keepUnlessNewer(col string) string {
	return col + ` = CASE WHEN excluded.` + col + ` = '' THEN hosts.` + col +
		` WHEN hosts.` + col + ` = '' OR ` + deltaNewer + ` THEN excluded.` + col + ` ELSE hosts.` + col + ` END`
}

func keepUnlessSet(col string) string {
	return col + ` = CASE WHEN excluded.` + col + ` = '' THEN hosts.` + col + ` ELSE excluded.` + col + ` END`
}

func lastIfNewer(col string) string {
	return col + ` = CASE WHEN ` + lastNewer + ` THEN excluded.` + col + ` ELSE hosts.` + col + ` END`
}

// minTime and maxTime merge two nullable times (min/max of SQLite return
// NULL if any argument is NULL; LEAST/GREATEST of PostgreSQL skip NULLs).
func minTime(table, col string) string {
	return col + ` = LEAST(COALESCE(` + table + `.` + col + `, excluded.` + col + `), COALESCE(excluded.` + col + `, ` + table + `.` + col + `))`
}

func maxTime(table, col string) string {
	return col + ` = GREATEST(COALESCE(` + table + `.` + col + `, excluded.` + col + `), COALESCE(excluded.` + col + `, ` + table + `.` + col + `))`
}

func add(table string, cols ...string) string {
	var s []string
	for _, c := range cols {
		s = append(s, c+` = `+table+`.`+c+` + excluded.`+c)
	}
	return strings.Join(s, ",\n\t")
}

var stmtText = [nStmts]string{
	stUpsertHost: `INSERT INTO hosts (ip, mac, hostname, owner, site, deadline, observer, first_seen, last_seen,
	contacts, bytes_out, bytes_in, packets_out, packets_in, flows,
	last_time, last_protocol, last_name, last_destination, last_rule, last_reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ip) DO UPDATE SET
	` + keepUnlessNewer("mac") + `,
	` + keepUnlessNewer("hostname") + `,
	` + keepUnlessSet("owner") + `,
	` + keepUnlessSet("site") + `,
	deadline = COALESCE(excluded.deadline, hosts.deadline),
	` + keepUnlessNewer("observer") + `,
	` + minTime("hosts", "first_seen") + `,
	` + maxTime("hosts", "last_seen") + `,
	` + add("hosts", "contacts", "bytes_out", "bytes_in", "packets_out", "packets_in", "flows") + `,
	` + lastIfNewer("last_protocol") + `,
	` + lastIfNewer("last_name") + `,
	` + lastIfNewer("last_destination") + `,
	` + lastIfNewer("last_rule") + `,
	` + lastIfNewer("last_reason") + `,
	` + lastIfNewer("last_time"),
	stUpsertCategory: `INSERT INTO host_categories (ip, category, first_seen, last_seen,
	contacts, bytes_out, bytes_in, packets_out, packets_in, flows)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ip, category) DO UPDATE SET
	` + minTime("host_categories", "first_seen") + `,
	` + maxTime("host_categories", "last_seen") + `,
	` + add("host_categories", "contacts", "bytes_out", "bytes_in", "packets_out", "packets_in", "flows"),
	// A name is added while the host has fewer than MaxNamesStored; one
	// that is not there after that was cut. The host row, written before
	// in the same transaction, is locked (PostgreSQL): sensors adding
	// names to one host take turns and the bound holds.
	stInsertName: `INSERT INTO host_names (ip, name) SELECT CAST(? AS TEXT), CAST(? AS TEXT)
WHERE (SELECT COUNT(*) FROM host_names WHERE ip = ?) < ` + strconv.Itoa(inventory.MaxNamesStored) + `
ON CONFLICT (ip, name) DO NOTHING`,
	stCountCut: `UPDATE hosts SET names_cut = names_cut + 1
WHERE ip = ? AND NOT EXISTS (SELECT 1 FROM host_names WHERE ip = ? AND name = ?)`,
	stInsertRule:     `INSERT INTO host_rules (ip, rule) VALUES (?, ?) ON CONFLICT (ip, rule) DO NOTHING`,
	stInsertEvidence: `INSERT INTO evidence (ip, time, category, protocol, name, destination, rule, reason, observer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stUpsertDaily: `INSERT INTO daily (ip, day, category, contacts) VALUES (?, ?, ?, ?)
ON CONFLICT (ip, day, category) DO UPDATE SET contacts = daily.contacts + excluded.contacts`,
}

// stmtName names each statement's row in errors.
var stmtName = [nStmts]string{
	stUpsertHost:     "host",
	stUpsertCategory: "category of host",
	stInsertName:     "name of host",
	stCountCut:       "name of host",
	stInsertRule:     "rule of host",
	stInsertEvidence: "evidence of host",
	stUpsertDaily:    "daily count of host",
}

// db is the engine-independent store behind SQLite and Postgres.
type db struct {
	name string // for errors: "sqlite /path" or "postgres://user:xxxxx@host/db"
	d    *dialect
	w    *sql.DB // writes
	r    *sql.DB // reads; the same as w for PostgreSQL
	sqls [nStmts]string
	// SQLite: the write statements, prepared once on the one writer
	// connection. PostgreSQL: nil; pgx prepares and caches them per
	// connection, and a write sends them as one pipelined batch.
	stmts [nStmts]*sql.Stmt
}

func (s *db) errorf(op string, err error) error {
	return fmt.Errorf("inventory store %s: %s: %w", s.name, op, err)
}

// open migrates the store and prepares the write statements.
func (s *db) open(ctx context.Context, prepare bool) error {
	if err := migrate(ctx, s.w, s.d); err != nil {
		return s.errorf("migrate", err)
	}
	for i, q := range stmtText {
		s.sqls[i] = s.d.rebind(q)
		if !prepare {
			continue
		}
		st, err := s.w.PrepareContext(ctx, s.sqls[i])
		if err != nil {
			return s.errorf("prepare "+stmtName[i]+" statement", err)
		}
		s.stmts[i] = st
	}
	return nil
}

func (s *db) close() error {
	for _, st := range s.stmts {
		if st != nil {
			st.Close()
		}
	}
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	if err != nil {
		return s.errorf("close", err)
	}
	return nil
}

// addr is the stored form of an address.
func addr(a netip.Addr) (string, error) {
	if !a.IsValid() {
		return "", fmt.Errorf("invalid address")
	}
	return a.Unmap().String(), nil
}

// day is the UTC midnight starting t's day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func destination(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return text(ap.String())
}

// rowWriter takes the statements of one write transaction.
type rowWriter interface {
	// exec runs or queues statement i, about host ip.
	exec(i int, ip string, args ...any) error
}

// stmtWriter runs each statement at once, in a database/sql
// transaction (SQLite).
type stmtWriter struct {
	ctx      context.Context
	tx       *sql.Tx
	prepared *[nStmts]*sql.Stmt
	st       [nStmts]*sql.Stmt
}

func (w *stmtWriter) exec(i int, ip string, args ...any) error {
	if w.st[i] == nil {
		w.st[i] = w.tx.StmtContext(w.ctx, w.prepared[i])
	}
	if _, err := w.st[i].ExecContext(w.ctx, args...); err != nil {
		return fmt.Errorf("%s %s: %w", stmtName[i], ip, err)
	}
	return nil
}

// batchWriter queues the statements, sent as one pipelined batch
// (PostgreSQL): one round trip for the whole transaction.
type batchWriter struct {
	sqls  *[nStmts]string
	batch pgx.Batch
	rows  []queued
}

type queued struct {
	stmt int
	ip   string
}

func (w *batchWriter) exec(i int, ip string, args ...any) error {
	w.batch.Queue(w.sqls[i], args...)
	w.rows = append(w.rows, queued{i, ip})
	return nil
}

func (s *db) write(ctx context.Context, b *inventory.Batch) error {
	if b == nil || b.Len() == 0 {
		return nil
	}
	// Rows are written in address order so that sensors writing the
	// same hosts take their row locks in the same order (PostgreSQL).
	hosts := make([]*inventory.HostDelta, len(b.Hosts))
	for i := range b.Hosts {
		hosts[i] = &b.Hosts[i]
	}
	slices.SortStableFunc(hosts, func(x, y *inventory.HostDelta) int { return x.IP.Unmap().Compare(y.IP.Unmap()) })
	days := make([]*inventory.DayCount, len(b.Daily))
	for i := range b.Daily {
		days[i] = &b.Daily[i]
	}
	slices.SortStableFunc(days, func(x, y *inventory.DayCount) int {
		if c := x.IP.Unmap().Compare(y.IP.Unmap()); c != 0 {
			return c
		}
		if c := x.Day.Compare(y.Day); c != 0 {
			return c
		}
		return strings.Compare(string(x.Category), string(y.Category))
	})
	rows := func(w rowWriter) error { return s.writeRows(w, hosts, b.Evidence, days) }
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if s.stmts[0] != nil {
			err = s.stmtTx(ctx, rows)
		} else {
			err = s.batchTx(ctx, rows)
		}
		if err == nil || !s.d.retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return s.errorf("write", err)
	}
	return nil
}

func (s *db) stmtTx(ctx context.Context, rows func(rowWriter) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := rows(&stmtWriter{ctx: ctx, tx: tx, prepared: &s.stmts}); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *db) batchTx(ctx context.Context, rows func(rowWriter) error) error {
	w := &batchWriter{sqls: &s.sqls}
	if err := rows(w); err != nil {
		return err
	}
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection %T is not pgx", dc)
		}
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		br := tx.SendBatch(ctx, &w.batch)
		for _, q := range w.rows {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("%s %s: %w", stmtName[q.stmt], q.ip, err)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// writeRows writes or queues the rows of a batch.
func (s *db) writeRows(w rowWriter, hosts []*inventory.HostDelta, evidence []inventory.EvidenceRow, days []*inventory.DayCount) error {
	t := s.d.timeArg
	for _, h := range hosts {
		ip, err := addr(h.IP)
		if err != nil {
			return fmt.Errorf("host %v: %w", h.IP, err)
		}
		l := &h.Last
		if err := w.exec(stUpsertHost, ip, ip, text(h.MAC), text(h.Hostname), text(h.Owner), text(h.Site),
			t(h.Deadline), text(h.Observer), t(h.FirstSeen), t(h.LastSeen), count(h.Contacts),
			count(h.Traffic.BytesOut), count(h.Traffic.BytesIn), count(h.Traffic.PacketsOut), count(h.Traffic.PacketsIn), count(h.Traffic.Flows),
			t(l.Time), text(l.Protocol), text(l.Name), destination(l.Destination), text(l.RuleID), text(l.Reason)); err != nil {
			return err
		}
		if len(h.Categories) > 0 {
			cats := make([]rules.Category, 0, len(h.Categories))
			for c := range h.Categories {
				cats = append(cats, c)
			}
			slices.Sort(cats)
			for _, c := range cats {
				v := h.Categories[c]
				if v == nil {
					continue
				}
				if err := w.exec(stUpsertCategory, ip, ip, text(string(c)), t(v.First), t(v.Last), count(v.Count),
					count(v.Traffic.BytesOut), count(v.Traffic.BytesIn), count(v.Traffic.PacketsOut), count(v.Traffic.PacketsIn), count(v.Traffic.Flows)); err != nil {
					return err
				}
			}
		}
		for _, name := range h.Names {
			if name = text(name); name == "" {
				continue
			}
			if err := w.exec(stInsertName, ip, ip, name, ip); err != nil {
				return err
			}
			if err := w.exec(stCountCut, ip, ip, ip, name); err != nil {
				return err
			}
		}
		for _, r := range h.Rules {
			if err := w.exec(stInsertRule, ip, ip, text(r)); err != nil {
				return err
			}
		}
	}
	for i := range evidence {
		e := &evidence[i]
		ip, err := addr(e.IP)
		if err != nil {
			return fmt.Errorf("evidence %v: %w", e.IP, err)
		}
		when := e.Time
		if when.IsZero() {
			when = e.Evidence.Time
		}
		if when.IsZero() {
			return fmt.Errorf("evidence %s: no time", ip)
		}
		if err := w.exec(stInsertEvidence, ip, ip, t(when), text(string(e.Category)), text(e.Protocol), text(e.Name),
			destination(e.Destination), text(e.RuleID), text(e.Reason), text(e.Observer)); err != nil {
			return err
		}
	}
	for _, dc := range days {
		ip, err := addr(dc.IP)
		if err != nil {
			return fmt.Errorf("daily %v: %w", dc.IP, err)
		}
		if dc.Day.IsZero() {
			return fmt.Errorf("daily %s: no day", ip)
		}
		if err := w.exec(stUpsertDaily, ip, ip, t(day(dc.Day)), text(string(dc.Category)), count(dc.Contacts)); err != nil {
			return err
		}
	}
	return nil
}

// hostFilter is the WHERE clause over hosts selecting f.
func (s *db) hostFilter(f inventory.Filter) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds = append(conds, "last_seen >= ?")
		args = append(args, s.d.timeArg(f.Since))
	}
	if f.Site != "" {
		conds = append(conds, "site = ?")
		args = append(args, text(f.Site))
	}
	if f.Category != "" {
		conds = append(conds, "ip IN (SELECT ip FROM host_categories WHERE category = ?)")
		args = append(args, text(string(f.Category)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *db) hosts(ctx context.Context, f inventory.Filter) ([]inventory.Host, error) {
	out, err := s.readHosts(ctx, f)
	if err != nil {
		return nil, s.errorf("hosts", err)
	}
	return out, nil
}

func (s *db) readHosts(ctx context.Context, f inventory.Filter) ([]inventory.Host, error) {
	tx, err := s.r.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	where, args := s.hostFilter(f)
	// Child rows of the selected hosts.
	sub := ""
	if where != "" {
		sub = " WHERE ip IN (SELECT ip FROM hosts" + where + ")"
	}
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT ip, mac, hostname, owner, site, deadline, observer, first_seen, last_seen,
	contacts, bytes_out, bytes_in, packets_out, packets_in, flows, names_cut,
	last_time, last_protocol, last_name, last_destination, last_rule, last_reason
FROM hosts`+where), args...)
	if err != nil {
		return nil, err
	}
	var out []inventory.Host
	index := map[string]int{}
	for rows.Next() {
		var h inventory.Host
		var ip, dst string
		tr := &h.Traffic
		if err := rows.Scan(&ip, &h.MAC, &h.Hostname, &h.Owner, &h.Site, timeCol{&h.Deadline}, &h.Observer,
			timeCol{&h.FirstSeen}, timeCol{&h.LastSeen}, countCol{&h.Contacts},
			countCol{&tr.BytesOut}, countCol{&tr.BytesIn}, countCol{&tr.PacketsOut}, countCol{&tr.PacketsIn}, countCol{&tr.Flows},
			countCol{&h.NamesCut}, timeCol{&h.Last.Time}, &h.Last.Protocol, &h.Last.Name, &dst, &h.Last.RuleID, &h.Last.Reason); err != nil {
			rows.Close()
			return nil, err
		}
		if h.IP, err = netip.ParseAddr(ip); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stored address %q: %w", ip, err)
		}
		if dst != "" {
			if h.Last.Destination, err = netip.ParseAddrPort(dst); err != nil {
				rows.Close()
				return nil, fmt.Errorf("host %s: stored destination %q: %w", ip, dst, err)
			}
		}
		h.Categories = map[rules.Category]*inventory.Category{}
		index[ip] = len(out)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}

	rows, err = tx.QueryContext(ctx, s.d.rebind(`SELECT ip, category, first_seen, last_seen,
	contacts, bytes_out, bytes_in, packets_out, packets_in, flows FROM host_categories`+sub), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var ip, cat string
		c := &inventory.Category{}
		tr := &c.Traffic
		if err := rows.Scan(&ip, &cat, timeCol{&c.First}, timeCol{&c.Last}, countCol{&c.Count},
			countCol{&tr.BytesOut}, countCol{&tr.BytesIn}, countCol{&tr.PacketsOut}, countCol{&tr.PacketsIn}, countCol{&tr.Flows}); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := index[ip]; ok {
			out[i].Categories[rules.Category(cat)] = c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()

	for _, q := range []struct {
		table, col string
		dst        func(*inventory.Host) *[]string
	}{
		{"host_names", "name", func(h *inventory.Host) *[]string { return &h.Names }},
		{"host_rules", "rule", func(h *inventory.Host) *[]string { return &h.Rules }},
	} {
		rows, err = tx.QueryContext(ctx, s.d.rebind(`SELECT ip, `+q.col+` FROM `+q.table+sub), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var ip, v string
			if err := rows.Scan(&ip, &v); err != nil {
				rows.Close()
				return nil, err
			}
			if i, ok := index[ip]; ok {
				p := q.dst(&out[i])
				*p = append(*p, v)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rows.Close()
	}
	for i := range out {
		// Sorted here, by bytes: the database's collation may differ.
		slices.Sort(out[i].Names)
		slices.Sort(out[i].Rules)
	}
	slices.SortFunc(out, func(a, b inventory.Host) int { return a.IP.Compare(b.IP) })
	return out, nil
}

func (s *db) daily(ctx context.Context, f inventory.Filter) ([]inventory.DayCount, error) {
	out, err := s.readDaily(ctx, f)
	if err != nil {
		return nil, s.errorf("daily", err)
	}
	return out, nil
}

func (s *db) readDaily(ctx context.Context, f inventory.Filter) ([]inventory.DayCount, error) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		// The day holding Since and the days after it.
		conds = append(conds, "day >= ?")
		args = append(args, s.d.timeArg(day(f.Since)))
	}
	if f.Category != "" {
		conds = append(conds, "category = ?")
		args = append(args, text(string(f.Category)))
	}
	if f.Site != "" {
		conds = append(conds, "ip IN (SELECT ip FROM hosts WHERE site = ?)")
		args = append(args, text(f.Site))
	}
	q := `SELECT ip, day, category, contacts FROM daily`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q+" ORDER BY day"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []inventory.DayCount
	for rows.Next() {
		var dc inventory.DayCount
		var ip, cat string
		if err := rows.Scan(&ip, timeCol{&dc.Day}, &cat, countCol{&dc.Contacts}); err != nil {
			return nil, err
		}
		if dc.IP, err = netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("stored address %q: %w", ip, err)
		}
		dc.Category = rules.Category(cat)
		out = append(out, dc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b inventory.DayCount) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return strings.Compare(string(a.Category), string(b.Category))
	})
	return out, nil
}

// prune deletes evidence older than before and the daily rows of days
// that ended before the day holding before.
func (s *db) prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.pruneTx(ctx, before)
	if err != nil {
		return 0, s.errorf("prune", err)
	}
	return n, nil
}

func (s *db) pruneTx(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var total int64
	for _, q := range []struct {
		sql string
		arg any
	}{
		{`DELETE FROM evidence WHERE time < ?`, s.d.timeArg(before)},
		{`DELETE FROM daily WHERE day < ?`, s.d.timeArg(day(before))},
	} {
		res, err := tx.ExecContext(ctx, s.d.rebind(q.sql), q.arg)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return total, nil
}

func (s *db) schemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.errorf("schema version", err)
	}
	return v, nil
}
