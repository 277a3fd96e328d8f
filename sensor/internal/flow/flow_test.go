package flow

import (
	"net/netip"
	"testing"
	"time"
)

var (
	c = netip.MustParseAddr("10.0.0.1")
	s = netip.MustParseAddr("192.0.2.7")
)

func TestKeySymmetric(t *testing.T) {
	k1, aIsSrc1 := MakeKey(c, s, 40000, 443, 6)
	k2, aIsSrc2 := MakeKey(s, c, 443, 40000, 6)
	if k1 != k2 {
		t.Fatalf("keys differ: %+v %+v", k1, k2)
	}
	if aIsSrc1 == aIsSrc2 {
		t.Fatalf("both directions claim to be endpoint A")
	}
	if k3, _ := MakeKey(c, s, 40001, 443, 6); k3 == k1 {
		t.Fatal("different ports give the same key")
	}
	if k4, _ := MakeKey(c, s, 40000, 443, 17); k4 == k1 {
		t.Fatal("different protocols give the same key")
	}
}

func TestTableExpiryOnPacketTime(t *testing.T) {
	tb := NewTable(Config{MaxFlows: 10, UDPTimeout: time.Minute, TCPTimeout: 5 * time.Minute, DoneTimeout: 10 * time.Second, SweepEvery: time.Second})
	var expired int
	tb.OnExpire = func(*Flow) { expired++ }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	udp, _ := MakeKey(c, s, 5000, 53, 17)
	tcp, _ := MakeKey(c, s, 5001, 443, 6)
	fin, _ := MakeKey(c, s, 5002, 443, 6)
	for _, k := range []Key{udp, tcp, fin} {
		if f, isNew := tb.Lookup(k, t0, true); f == nil || !isNew {
			t.Fatal("flow not created")
		}
	}
	f, _ := tb.Lookup(fin, t0, false)
	f.Closing = true
	// 30 s later: only the closed TCP flow has timed out.
	tb.Lookup(udp, t0+int64(30*time.Second), false)
	if tb.Len() != 2 || expired != 1 {
		t.Fatalf("after 30s: %d flows, %d expired", tb.Len(), expired)
	}
	// 2 min later: the UDP flow (last seen at t0) has too.
	tb.Sweep(t0 + int64(2*time.Minute))
	if tb.Len() != 1 {
		t.Fatalf("after 2m: %d flows", tb.Len())
	}
	if f, _ := tb.Lookup(tcp, t0+int64(2*time.Minute), false); f == nil {
		t.Fatal("TCP flow expired too early")
	}
	tb.Flush()
	if tb.Len() != 0 || tb.Stats.Expired != 3 {
		t.Fatalf("after flush: %d flows, %d expired", tb.Len(), tb.Stats.Expired)
	}
}

func TestTableBounded(t *testing.T) {
	tb := NewTable(Config{MaxFlows: 100})
	now := time.Now().UnixNano()
	for i := range 1000 {
		k, _ := MakeKey(c, s, uint16(1000+i), 53, 17)
		tb.Lookup(k, now, true)
	}
	if tb.Len() != 100 || tb.Stats.Refused != 900 || tb.Stats.Peak != 100 {
		t.Fatalf("len %d, stats %+v", tb.Len(), tb.Stats)
	}
	// Slots are reused after expiry: the slice does not grow.
	tb.Flush()
	for i := range 100 {
		k, _ := MakeKey(c, s, uint16(5000+i), 53, 17)
		tb.Lookup(k, now, true)
	}
	if len(tb.flows) != 100 {
		t.Fatalf("slab grew to %d", len(tb.flows))
	}
}

func BenchmarkLookupHit(b *testing.B) {
	tb := NewTable(Config{})
	now := time.Now().UnixNano()
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i], _ = MakeKey(c, s, uint16(1000+i), 443, 6)
		tb.Lookup(keys[i], now, true)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if f, _ := tb.Lookup(keys[i&1023], now, true); f == nil {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkMakeKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MakeKey(c, s, 40000, 443, 6)
	}
}
