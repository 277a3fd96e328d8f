package store

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

const (
	benchHosts = 100_000
	benchBatch = 1_000
)

// benchBatches are benchHosts distinct hosts in batches of benchBatch,
// each host with a category, a name, a rule, its last evidence, one
// evidence row and one daily count: what a flush carries.
func benchBatches() []inventory.Batch {
	var out []inventory.Batch
	for start := 0; start < benchHosts; start += benchBatch {
		var b inventory.Batch
		for i := start; i < start+benchBatch; i++ {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			when := t0.Add(time.Duration(i) * time.Millisecond)
			tr := inventory.Traffic{BytesOut: 1200, BytesIn: 5400, PacketsOut: 6, PacketsIn: 7, Flows: 1}
			last := inventory.Evidence{Time: when, Protocol: "dns", Name: "ksn.kaspersky-labs.com",
				Destination: netip.MustParseAddrPort("192.0.2.53:53"), RuleID: "kaspersky-ksn", Reason: "name ksn.kaspersky-labs.com"}
			b.Hosts = append(b.Hosts, inventory.HostDelta{IP: a, MAC: "00:11:22:33:44:55", Observer: "bench",
				FirstSeen: when, LastSeen: when, Contacts: 1, Traffic: tr,
				Categories: map[rules.Category]*inventory.Category{rules.CategoryKSNTelemetry: {First: when, Last: when, Count: 1, Traffic: tr}},
				Names:      []string{"ksn.kaspersky-labs.com"}, Rules: []string{"kaspersky-ksn"}, Last: last})
			b.Evidence = append(b.Evidence, inventory.EvidenceRow{IP: a, Time: when, Category: rules.CategoryKSNTelemetry, Evidence: last, Observer: "bench"})
			b.Daily = append(b.Daily, inventory.DayCount{IP: a, Day: day(when), Category: rules.CategoryKSNTelemetry, Contacts: 1})
		}
		out = append(out, b)
	}
	return out
}

func writeAll(b *testing.B, s inventory.Store, batches []inventory.Batch) {
	for i := range batches {
		if err := s.Write(context.Background(), &batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpsert100kHosts writes 100,000 new hosts to a new SQLite
// store in batches of 1,000.
func BenchmarkUpsert100kHosts(b *testing.B) {
	batches := benchBatches()
	b.ReportAllocs()
	var elapsed time.Duration
	for i := range b.N {
		b.StopTimer()
		s, err := OpenSQLite(filepath.Join(b.TempDir(), fmt.Sprintf("bench-%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		writeAll(b, s, batches)
		elapsed += time.Since(start)
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchHosts*b.N)/elapsed.Seconds(), "hosts/s")
}

// BenchmarkHosts100k reads all 100,000 hosts of a SQLite store.
func BenchmarkHosts100k(b *testing.B) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	writeAll(b, s, benchBatches())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		hs, err := s.Hosts(context.Background(), inventory.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(hs) != benchHosts {
			b.Fatalf("%d hosts", len(hs))
		}
	}
}
