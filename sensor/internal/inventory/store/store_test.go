package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Test times are whole microseconds: PostgreSQL's TIMESTAMPTZ keeps no
// more.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func sqliteFile(t testing.TB) string {
	return filepath.Join(t.TempDir(), "inventory.db")
}

func TestSQLite(t *testing.T) {
	runStoreSuite(t, sqliteFile)
}

func openStore(t testing.TB, loc string) inventory.Store {
	t.Helper()
	s, err := Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t testing.TB, s inventory.Store, b inventory.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func hosts(t testing.TB, s inventory.Store, f inventory.Filter) []inventory.Host {
	t.Helper()
	hs, err := s.Hosts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func host(t testing.TB, s inventory.Store, a string) inventory.Host {
	t.Helper()
	for _, h := range hosts(t, s, inventory.Filter{}) {
		if h.IP == ip(a) {
			return h
		}
	}
	t.Fatalf("host %s not stored", a)
	return inventory.Host{}
}

func addrs(hs []inventory.Host) string {
	var s []string
	for _, h := range hs {
		s = append(s, h.IP.String())
	}
	return strings.Join(s, " ")
}

// rawDB is the store's database handle, for checks the interface does
// not offer.
func rawDB(t testing.TB, s inventory.Store) *sql.DB {
	switch s := s.(type) {
	case *SQLite:
		return s.w
	case *Postgres:
		return s.w
	}
	t.Fatalf("store %T", s)
	return nil
}

func rowCount(t testing.TB, s inventory.Store, table string) int {
	t.Helper()
	var n int
	if err := rawDB(t, s).QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func delta(a string, first, last time.Time, contacts uint64) inventory.HostDelta {
	return inventory.HostDelta{IP: ip(a), FirstSeen: first, LastSeen: last, Contacts: contacts}
}

func cat(first, last time.Time, n uint64, tr inventory.Traffic) map[rules.Category]*inventory.Category {
	return map[rules.Category]*inventory.Category{rules.CategoryManagement: {First: first, Last: last, Count: n, Traffic: tr}}
}

// runStoreSuite runs the behaviour every store must have; fresh returns
// the path or DSN of a new, empty store.
func runStoreSuite(t *testing.T, fresh func(testing.TB) string) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, loc string)
	}{
		{"first write creates a fully populated host", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			if v, err := s.SchemaVersion(ctx); err != nil || v != latestSchema {
				t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latestSchema)
			}
			if hs := hosts(t, s, inventory.Filter{}); len(hs) != 0 {
				t.Fatalf("new store has hosts: %v", addrs(hs))
			}
			tr := inventory.Traffic{BytesOut: 1000, BytesIn: 20000, PacketsOut: 10, PacketsIn: 20, Flows: 2}
			last := inventory.Evidence{Time: at(time.Hour), Protocol: "dns", Name: "ksn.kaspersky-labs.com",
				Destination: netip.MustParseAddrPort("[2001:db8::53]:53"), RuleID: "kaspersky-ksn", Reason: "name ksn.kaspersky-labs.com"}
			d := inventory.HostDelta{IP: ip("192.168.1.10"), MAC: "00:11:22:33:44:55", Hostname: "pc-10", Owner: "alice", Site: "hq",
				Deadline: at(30 * 24 * time.Hour), Observer: "sensor-a", FirstSeen: at(0), LastSeen: at(time.Hour), Contacts: 3, Traffic: tr,
				Categories: map[rules.Category]*inventory.Category{
					rules.CategoryManagement:   {First: at(0), Last: at(time.Minute), Count: 1, Traffic: inventory.Traffic{BytesOut: 100, Flows: 1}},
					rules.CategoryKSNTelemetry: {First: at(time.Minute), Last: at(time.Hour), Count: 2, Traffic: inventory.Traffic{BytesOut: 900, Flows: 1}},
				},
				Names: []string{"ksn.kaspersky-labs.com", "dnl-01.geo.kaspersky.com"},
				Rules: []string{"kaspersky-ksn", "kaspersky-ksc"},
				Last:  last,
			}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			want := inventory.Host{IP: d.IP, MAC: d.MAC, Hostname: d.Hostname, Owner: d.Owner, Site: d.Site, Deadline: d.Deadline,
				Observer: d.Observer, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, Contacts: 3, Traffic: tr, Categories: d.Categories,
				Names: []string{"dnl-01.geo.kaspersky.com", "ksn.kaspersky-labs.com"}, Rules: []string{"kaspersky-ksc", "kaspersky-ksn"},
				Last: last}
			hs := hosts(t, s, inventory.Filter{})
			if len(hs) != 1 || !reflect.DeepEqual(hs[0], want) {
				t.Fatalf("Hosts =\n%+v\nwant\n%+v", hs, want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}},

		{"deltas merge: first is the minimum, last the maximum, counts add", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			a := delta("10.0.0.1", at(time.Hour), at(2*time.Hour), 2)
			a.Traffic = inventory.Traffic{BytesOut: 1, BytesIn: 2, PacketsOut: 3, PacketsIn: 4, Flows: 5}
			a.Categories = cat(at(time.Hour), at(2*time.Hour), 2, a.Traffic)
			b := delta("10.0.0.1", at(0), at(90*time.Minute), 5)
			b.Traffic = inventory.Traffic{BytesOut: 10, BytesIn: 20, PacketsOut: 30, PacketsIn: 40, Flows: 50}
			b.Categories = cat(at(0), at(90*time.Minute), 5, b.Traffic)
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{a}})
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{b}})
			h := host(t, s, "10.0.0.1")
			sum := inventory.Traffic{BytesOut: 11, BytesIn: 22, PacketsOut: 33, PacketsIn: 44, Flows: 55}
			if !h.FirstSeen.Equal(at(0)) || !h.LastSeen.Equal(at(2*time.Hour)) || h.Contacts != 7 || h.Traffic != sum {
				t.Errorf("host first %v last %v contacts %d traffic %+v", h.FirstSeen, h.LastSeen, h.Contacts, h.Traffic)
			}
			c := h.Categories[rules.CategoryManagement]
			if c == nil || !c.First.Equal(at(0)) || !c.Last.Equal(at(2*time.Hour)) || c.Count != 7 || c.Traffic != sum {
				t.Errorf("category %+v", c)
			}
			// A second category joins the first.
			d := delta("10.0.0.1", at(3*time.Hour), at(3*time.Hour), 1)
			d.Categories = map[rules.Category]*inventory.Category{rules.CategoryBrand: {First: at(3 * time.Hour), Last: at(3 * time.Hour), Count: 1}}
			d.Rules = []string{"b-rule", "a-rule"}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d, d}}) // the same host twice in one batch
			h = host(t, s, "10.0.0.1")
			if len(h.Categories) != 2 || h.Categories[rules.CategoryBrand].Count != 2 || h.Contacts != 9 ||
				!slices.Equal(h.Rules, []string{"a-rule", "b-rule"}) {
				t.Errorf("after a second category: %+v %v contacts %d", h.Categories, h.Rules, h.Contacts)
			}
		}},

		{"two sensors writing the same hosts at once add up", func(t *testing.T, loc string) {
			const nHosts, nBatches = 40, 15
			sensors := []inventory.Store{openStore(t, loc), openStore(t, loc)}
			var wg sync.WaitGroup
			errs := make(chan error, len(sensors))
			for si, s := range sensors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range nBatches {
						var b inventory.Batch
						for i := range nHosts {
							if si == 1 {
								i = nHosts - 1 - i // the other order: locks must not deadlock
							}
							a := fmt.Sprintf("10.1.0.%d", i+1)
							when := at(time.Duration(n*len(sensors)+si) * time.Minute)
							d := delta(a, when, when, 1)
							d.Observer = fmt.Sprintf("sensor-%d", si)
							d.Traffic.Flows = 1
							d.Categories = cat(when, when, 1, inventory.Traffic{Flows: 1})
							d.Names = []string{fmt.Sprintf("n%d.example", n%3)}
							b.Hosts = append(b.Hosts, d)
							b.Daily = append(b.Daily, inventory.DayCount{IP: ip(a), Day: when, Category: rules.CategoryManagement, Contacts: 1})
							b.Evidence = append(b.Evidence, inventory.EvidenceRow{IP: ip(a), Time: when, Category: rules.CategoryManagement, Observer: d.Observer})
						}
						if err := s.Write(ctx, &b); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			hs := hosts(t, sensors[0], inventory.Filter{})
			if len(hs) != nHosts {
				t.Fatalf("%d hosts, want %d", len(hs), nHosts)
			}
			total := uint64(len(sensors) * nBatches)
			lastWhen := at(time.Duration((nBatches-1)*len(sensors)+1) * time.Minute)
			for _, h := range hs {
				c := h.Categories[rules.CategoryManagement]
				if h.Contacts != total || h.Traffic.Flows != total || c == nil || c.Count != total ||
					!h.FirstSeen.Equal(at(0)) || !h.LastSeen.Equal(lastWhen) || h.Observer != "sensor-1" || len(h.Names) != 3 {
					t.Errorf("%s: contacts %d flows %d category %+v first %v last %v observer %q names %v",
						h.IP, h.Contacts, h.Traffic.Flows, c, h.FirstSeen, h.LastSeen, h.Observer, h.Names)
				}
			}
			days, err := sensors[1].Daily(ctx, inventory.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(days) != nHosts {
				t.Fatalf("%d daily rows, want %d", len(days), nHosts)
			}
			for _, d := range days {
				if d.Contacts != total {
					t.Errorf("daily %+v, want %d contacts", d, total)
				}
			}
			if n := rowCount(t, sensors[0], "evidence"); n != int(total)*nHosts {
				t.Errorf("%d evidence rows, want %d", n, int(total)*nHosts)
			}
		}},

		{"names are bounded", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			var names []string
			for i := range inventory.MaxNamesStored + 44 {
				names = append(names, fmt.Sprintf("n%03d.example", i))
			}
			d := delta("10.0.0.2", at(0), at(0), 1)
			d.Names = names
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			h := host(t, s, "10.0.0.2")
			if len(h.Names) != inventory.MaxNamesStored || h.NamesCut != 44 || h.Names[0] != "n000.example" ||
				!slices.IsSorted(h.Names) {
				t.Fatalf("%d names (%s … %s), %d cut", len(h.Names), h.Names[0], h.Names[len(h.Names)-1], h.NamesCut)
			}
			// Names already kept are no cut; new ones are.
			d.Names = []string{"n000.example", "n255.example", "new.example"}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			if h = host(t, s, "10.0.0.2"); len(h.Names) != inventory.MaxNamesStored || h.NamesCut != 45 {
				t.Fatalf("%d names, %d cut; want %d, 45", len(h.Names), h.NamesCut, inventory.MaxNamesStored)
			}
		}},

		{"empty fields do not erase stored ones", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			d := delta("10.0.0.3", at(0), at(time.Hour), 1)
			d.MAC, d.Hostname, d.Owner, d.Site, d.Observer, d.Deadline = "aa:bb:cc:dd:ee:ff", "pc-3", "bob", "branch", "sensor-a", at(48*time.Hour)
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{delta("10.0.0.3", at(2*time.Hour), at(3*time.Hour), 1)}})
			h := host(t, s, "10.0.0.3")
			if h.MAC != d.MAC || h.Hostname != d.Hostname || h.Owner != d.Owner || h.Site != d.Site || h.Observer != d.Observer ||
				!h.Deadline.Equal(d.Deadline) || h.Contacts != 2 {
				t.Fatalf("after an empty delta: %+v", h)
			}
			// Set fields replace: MAC, hostname and observer when the
			// delta saw the host last, owner, site and deadline always.
			older := delta("10.0.0.3", at(time.Minute), at(time.Minute), 1)
			older.MAC, older.Hostname, older.Observer, older.Owner, older.Site, older.Deadline = "11:11:11:11:11:11", "old", "sensor-b", "carol", "hq", at(72*time.Hour)
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{older}})
			h = host(t, s, "10.0.0.3")
			if h.MAC != d.MAC || h.Hostname != d.Hostname || h.Observer != d.Observer || h.Owner != "carol" || h.Site != "hq" ||
				!h.Deadline.Equal(at(72*time.Hour)) {
				t.Fatalf("after an older delta: %+v", h)
			}
			newer := delta("10.0.0.3", at(4*time.Hour), at(4*time.Hour), 1)
			newer.MAC, newer.Hostname, newer.Observer = "22:22:22:22:22:22", "new", "sensor-c"
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{newer}})
			h = host(t, s, "10.0.0.3")
			if h.MAC != newer.MAC || h.Hostname != newer.Hostname || h.Observer != newer.Observer {
				t.Fatalf("after a newer delta: %+v", h)
			}
		}},

		{"newer evidence replaces, older does not", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			ev := func(when time.Time, name string) inventory.HostDelta {
				d := delta("10.0.0.4", when, when, 1)
				d.Last = inventory.Evidence{Time: when, Protocol: "tls", Name: name, Destination: netip.MustParseAddrPort("198.51.100.7:443"),
					RuleID: "r-" + name, Reason: "sni " + name}
				return d
			}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{ev(at(time.Hour), "first")}})
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{ev(at(2*time.Hour), "newer")}})
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{ev(at(90*time.Minute), "older")}})
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{delta("10.0.0.4", at(3*time.Hour), at(3*time.Hour), 1)}}) // no evidence
			h := host(t, s, "10.0.0.4")
			if want := ev(at(2*time.Hour), "newer").Last; h.Last != want {
				t.Fatalf("Last = %+v, want %+v", h.Last, want)
			}
		}},

		{"filter by since, category and site", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			mk := func(a, site string, last time.Time, c rules.Category) inventory.HostDelta {
				d := delta(a, at(0), last, 1)
				d.Site = site
				d.Categories = map[rules.Category]*inventory.Category{c: {First: at(0), Last: last, Count: 1}}
				d.Names = []string{"name-of-" + a}
				return d
			}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{
				mk("10.0.0.10", "hq", at(time.Hour), rules.CategoryManagement),
				mk("10.0.0.2", "branch", at(3*time.Hour), rules.CategoryKSNTelemetry),
				mk("fd00::1", "hq", at(3*time.Hour), rules.CategoryKSNTelemetry),
				mk("10.0.0.9", "hq", at(5*time.Hour), rules.CategoryManagement),
			}})
			for _, tt := range []struct {
				f    inventory.Filter
				want string
			}{
				{inventory.Filter{}, "10.0.0.2 10.0.0.9 10.0.0.10 fd00::1"},
				{inventory.Filter{Since: at(3 * time.Hour)}, "10.0.0.2 10.0.0.9 fd00::1"},
				{inventory.Filter{Category: rules.CategoryManagement}, "10.0.0.9 10.0.0.10"},
				{inventory.Filter{Site: "hq"}, "10.0.0.9 10.0.0.10 fd00::1"},
				{inventory.Filter{Site: "hq", Category: rules.CategoryKSNTelemetry, Since: at(2 * time.Hour)}, "fd00::1"},
				{inventory.Filter{Site: "nowhere"}, ""},
			} {
				hs := hosts(t, s, tt.f)
				if got := addrs(hs); got != tt.want {
					t.Errorf("Hosts(%+v) = %q, want %q", tt.f, got, tt.want)
				}
				for _, h := range hs {
					if len(h.Categories) != 1 || len(h.Names) != 1 || h.Names[0] != "name-of-"+h.IP.String() {
						t.Errorf("Hosts(%+v): %s has categories %v names %v", tt.f, h.IP, h.Categories, h.Names)
					}
				}
			}
		}},

		{"daily counts accumulate", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			day2 := day1.AddDate(0, 0, 1)
			d := delta("10.0.0.5", day1, day2, 1)
			d.Site = "hq"
			b := inventory.Batch{Hosts: []inventory.HostDelta{d, delta("10.0.0.6", day1, day1, 1)}, Daily: []inventory.DayCount{
				{IP: ip("10.0.0.5"), Day: day2, Category: rules.CategoryManagement, Contacts: 2},
				{IP: ip("10.0.0.5"), Day: day1, Category: rules.CategoryManagement, Contacts: 3},
				{IP: ip("10.0.0.5"), Day: day1, Category: rules.CategoryBrand, Contacts: 1},
				{IP: ip("10.0.0.6"), Day: day1.Add(13 * time.Hour), Category: rules.CategoryManagement, Contacts: 4}, // not midnight: its day
			}}
			write(t, s, b)
			write(t, s, inventory.Batch{Daily: b.Daily[:2]})
			got, err := s.Daily(ctx, inventory.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			want := []inventory.DayCount{
				{IP: ip("10.0.0.5"), Day: day1, Category: rules.CategoryBrand, Contacts: 1},
				{IP: ip("10.0.0.5"), Day: day1, Category: rules.CategoryManagement, Contacts: 6},
				{IP: ip("10.0.0.6"), Day: day1, Category: rules.CategoryManagement, Contacts: 4},
				{IP: ip("10.0.0.5"), Day: day2, Category: rules.CategoryManagement, Contacts: 4},
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Daily =\n%v\nwant\n%v", got, want)
			}
			for _, tt := range []struct {
				f    inventory.Filter
				want []inventory.DayCount
			}{
				{inventory.Filter{Since: day2.Add(time.Hour)}, want[3:]},
				{inventory.Filter{Category: rules.CategoryManagement}, want[1:]},
				{inventory.Filter{Site: "hq"}, []inventory.DayCount{want[0], want[1], want[3]}},
			} {
				got, err := s.Daily(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Daily(%+v) =\n%v\nwant\n%v", tt.f, got, tt.want)
				}
			}
		}},

		{"prune removes old evidence and daily rows, keeps hosts", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var b inventory.Batch
			for i := range 4 {
				when := day1.Add(time.Duration(i) * 24 * time.Hour).Add(6 * time.Hour)
				b.Hosts = append(b.Hosts, delta("10.0.0.7", when, when, 1))
				b.Evidence = append(b.Evidence, inventory.EvidenceRow{IP: ip("10.0.0.7"), Time: when, Category: rules.CategoryManagement})
				b.Daily = append(b.Daily, inventory.DayCount{IP: ip("10.0.0.7"), Day: day(when), Category: rules.CategoryManagement, Contacts: 1})
			}
			write(t, s, b)
			// Before the third day's noon: evidence of days 1–3 (3 rows)
			// and daily rows of days 1–2 (the third day is not over).
			n, err := s.Prune(ctx, day1.Add(2*24*time.Hour+12*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n != 5 || rowCount(t, s, "evidence") != 1 || rowCount(t, s, "daily") != 2 {
				t.Fatalf("pruned %d rows; %d evidence, %d daily left", n, rowCount(t, s, "evidence"), rowCount(t, s, "daily"))
			}
			if h := host(t, s, "10.0.0.7"); h.Contacts != 4 {
				t.Fatalf("host after prune: %+v", h)
			}
			if n, err := s.Prune(ctx, day1); err != nil || n != 0 {
				t.Fatalf("second prune: %d, %v", n, err)
			}
		}},

		{"reopening is a no-op; a newer schema is refused", func(t *testing.T, loc string) {
			s, err := Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{delta("10.0.0.8", at(0), at(0), 1)}})
			s.Close()
			s = openStore(t, loc)
			if v, err := s.SchemaVersion(ctx); err != nil || v != latestSchema {
				t.Fatalf("SchemaVersion after reopen = %d, %v", v, err)
			}
			if n := rowCount(t, s, "schema_migrations"); n != latestSchema {
				t.Fatalf("%d migrations recorded, want %d", n, latestSchema)
			}
			if h := host(t, s, "10.0.0.8"); h.Contacts != 1 {
				t.Fatalf("host after reopen: %+v", h)
			}
			d := sqliteDialect
			if _, ok := s.(*Postgres); ok {
				d = postgresDialect
			}
			if _, err := rawDB(t, s).Exec(d.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), latestSchema+7, d.timeArg(time.Now())); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, err = Open(ctx, loc)
			if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", latestSchema+7)) {
				t.Fatalf("opening a store of a newer schema: %v", err)
			}
			t.Logf("newer schema: %v", err)
		}},

		{"strings round-trip", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			tricky := []string{
				`<script>alert("x")</script>`,
				`it's "quoted" \ back\slash; DROP TABLE hosts; --`,
				"line\nbreak\r\ttab",
				"ünïcødé 名前 🙂",
				`?$1 %s {time}`,
			}
			d := delta("10.0.0.9", at(0), at(0), 1)
			d.Names = tricky
			d.Rules = tricky
			d.Hostname, d.Owner, d.Site, d.Observer = tricky[0], tricky[1], tricky[2], tricky[3]
			d.Last = inventory.Evidence{Time: at(0), Protocol: tricky[4], Name: tricky[0], RuleID: tricky[1], Reason: tricky[2]}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			h := host(t, s, "10.0.0.9")
			sorted := slices.Sorted(slices.Values(tricky))
			if h.Hostname != d.Hostname || h.Owner != d.Owner || h.Site != d.Site || h.Observer != d.Observer || h.Last != d.Last ||
				!slices.Equal(h.Names, sorted) || !slices.Equal(h.Rules, sorted) {
				t.Fatalf("round trip:\n%q\n%q", []string{h.Hostname, h.Owner, h.Site, h.Observer}, h.Names)
			}
			if hs := hosts(t, s, inventory.Filter{Site: tricky[2]}); len(hs) != 1 {
				t.Fatalf("filter by a site with a newline: %d hosts", len(hs))
			}
			// Invalid UTF-8 and NUL, which PostgreSQL refuses in text, are
			// stored with U+FFFD in both engines.
			d = delta("10.0.0.9", at(0), at(time.Hour), 1)
			d.Hostname = "bad\xff\xfeutf8"
			d.Names = []string{"nul\x00byte"}
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{d}})
			h = host(t, s, "10.0.0.9")
			if h.Hostname != "bad\uFFFDutf8" || !slices.Contains(h.Names, "nul\uFFFDbyte") {
				t.Fatalf("invalid UTF-8 stored as %q, names %q", h.Hostname, h.Names)
			}
		}},

		{"addresses: canonical, ordered, invalid refused", func(t *testing.T, loc string) {
			s := openStore(t, loc)
			write(t, s, inventory.Batch{Hosts: []inventory.HostDelta{
				delta("::ffff:10.0.0.1", at(0), at(0), 1), // the same host as 10.0.0.1
				delta("10.0.0.1", at(0), at(0), 1),
				delta("fe80::1", at(0), at(0), 1),
				delta("10.0.0.200", at(0), at(0), 1),
				delta("10.0.0.30", at(0), at(0), 1),
			}})
			hs := hosts(t, s, inventory.Filter{})
			if got := addrs(hs); got != "10.0.0.1 10.0.0.30 10.0.0.200 fe80::1" || hs[0].Contacts != 2 {
				t.Fatalf("Hosts = %q (first has %d contacts)", got, hs[0].Contacts)
			}
			err := s.Write(ctx, &inventory.Batch{Hosts: []inventory.HostDelta{delta("10.0.0.40", at(0), at(0), 1), {}}})
			if err == nil || !strings.Contains(err.Error(), "inventory store ") {
				t.Fatalf("writing an invalid address: %v", err)
			}
			if got := addrs(hosts(t, s, inventory.Filter{})); strings.Contains(got, "10.0.0.40") {
				t.Fatalf("a failed batch was partly written: %s", got)
			}
			if err := s.Write(ctx, &inventory.Batch{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, fresh(t)) })
	}
}

func TestOpenSQLiteErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "inventory.db")
	_, err := OpenSQLite(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("OpenSQLite in a missing directory: %v", err)
	}
	t.Log(err)
	// Characters that mean something in a URI are a plain file name.
	odd := filepath.Join(t.TempDir(), "a ?b#c%20d.db")
	s, err := OpenSQLite(odd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != odd {
		t.Fatalf("Path = %q", s.Path())
	}
	if _, err := filepath.Glob(odd); err != nil {
		t.Fatal(err)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(odd), "*")); !slices.Contains(matches, odd) {
		t.Fatalf("files made: %q", matches)
	}
}

func TestOpenDispatch(t *testing.T) {
	for _, tt := range []struct {
		loc  string
		want bool
	}{
		{"postgres://u:p@h/db", true},
		{"PostgreSQL://h/db", true},
		{"/var/lib/phonehome/inventory.db", false},
		{"postgres.db", false},
	} {
		if got := IsPostgres(tt.loc); got != tt.want {
			t.Errorf("IsPostgres(%q) = %v", tt.loc, got)
		}
	}
	_, err := Open(context.Background(), "postgres://user:s3cret@127.0.0.1:1/db?connect_timeout=1")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1/db") {
		t.Fatalf("error of an unreachable PostgreSQL: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable":    "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgresql://h/db?password=secret&user=u":         "postgresql://h/db?password=xxxxx&user=u",
		"host=h user=u password=secret dbname=db":          "host=h user=u password=xxxxx dbname=db",
		"host=h password = 'se cret' dbname=db":            "host=h password = xxxxx dbname=db",
		"postgres://h/db":                                  "postgres://h/db",
		"postgres://u@h/db":                                "postgres://u@h/db",
		"postgres://u:p%40ss@h/db":                         "postgres://u:xxxxx@h/db",
		"postgresql://[::1]:5432/db?application_name=x%20": "postgresql://[::1]:5432/db?application_name=x%20",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	q := `UPDATE t SET a = LEAST(a, ?), b = GREATEST(b, ?) WHERE c = ?`
	if got, want := postgresDialect.rebind(q), `UPDATE t SET a = LEAST(a, $1), b = GREATEST(b, $2) WHERE c = $3`; got != want {
		t.Errorf("postgres: %s", got)
	}
	if got, want := sqliteDialect.rebind(q), `UPDATE t SET a = min(a, ?), b = max(b, ?) WHERE c = ?`; got != want {
		t.Errorf("sqlite: %s", got)
	}
}
