package pipeline

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

func TestLearned(t *testing.T) {
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	hits := set.MatchName("dnl-05.geo.kaspersky.com", nil)
	if len(hits) == 0 {
		t.Fatal("no hit for the test name")
	}
	l := NewLearned(LearnedConfig{MaxEntries: 16 * 4, MinTTL: time.Minute, MaxTTL: time.Hour})
	a := netip.MustParseAddr("203.0.113.77")
	const sec = int64(time.Second)
	now := int64(1000) * sec
	l.Learn(a, "dnl-05.geo.kaspersky.com", hits, 5, now) // TTL 5 s: kept a minute
	if name, h, ok := l.Lookup(a, now+50*sec); !ok || name != "dnl-05.geo.kaspersky.com" || len(h) != len(hits) {
		t.Fatalf("lookup within the clamped TTL: %q %v %v", name, h, ok)
	}
	if _, _, ok := l.Lookup(a, now+61*sec); ok {
		t.Fatal("entry outlived the min TTL")
	}
	l.Learn(a, "x", hits, 1<<30, now) // huge TTL: an hour
	if _, _, ok := l.Lookup(a, now+3599*sec); !ok {
		t.Fatal("entry gone before the max TTL")
	}
	if _, _, ok := l.Lookup(a, now+3601*sec); ok {
		t.Fatal("entry outlived the max TTL")
	}
	if _, _, ok := l.Lookup(netip.MustParseAddr("2001:db8::1"), now); ok {
		t.Fatal("unknown address found")
	}
	// At the cap, entries are evicted and counted; the table stays bounded.
	for i := range 1000 {
		l.Learn(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), "n", hits, 300, now+int64(i))
	}
	if n := l.Len(); n > 64 {
		t.Fatalf("%d entries, cap 64", n)
	}
	if l.Evicted.Load() == 0 {
		t.Fatal("no eviction counted")
	}
}

// BenchmarkLearnedLookup: one look-up per new flow.
func BenchmarkLearnedLookup(b *testing.B) {
	l := NewLearned(LearnedConfig{})
	for i := range 65536 {
		l.Learn(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), "n", nil, 300, 0)
	}
	miss := netip.MustParseAddr("192.0.2.1")
	hit := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		l.Lookup(miss, 1)
		l.Lookup(hit, 1)
	}
}

// BenchmarkLearnedMemory reports the heap a full table takes, per entry.
func BenchmarkLearnedMemory(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := NewLearned(LearnedConfig{})
		for i := range DefaultLearnedConfig.MaxEntries {
			l.Learn(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "dnl-05.geo.kaspersky.com", nil, 300, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(l.Len()), "bytes/entry")
		b.ReportMetric(float64(l.Len()), "entries")
		runtime.KeepAlive(l)
	}
}
