package flow

import (
	"encoding/binary"
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
		f, isNew := tb.Lookup(k, t0, true)
		if f == nil || !isNew {
			t.Fatal("flow not created")
		}
		f.Packets = [2]uint64{1, 1} // established: the protocol's timeout
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
		if f, isNew := tb.Lookup(k, now, true); f == nil || !isNew {
			t.Fatalf("flow %d not created", i)
		}
	}
	// Full: each new flow evicted one, none was refused.
	if tb.Len() != 100 || tb.Stats.Evicted != 900 || tb.Stats.Refused != 0 || tb.Stats.Peak != 100 {
		t.Fatalf("len %d, stats %+v", tb.Len(), tb.Stats)
	}
	// Entries are reused after expiry: the table does not grow.
	tb.Flush()
	for i := range 100 {
		k, _ := MakeKey(c, s, uint16(5000+i), 53, 17)
		tb.Lookup(k, now, true)
	}
	if tb.n != 100 {
		t.Fatalf("table grew to %d entries", tb.n)
	}
}

// TestFlowsDoNotMove: a flow keeps its address while the table grows by
// chunks past it, and look-ups across chunk boundaries find their flows.
func TestFlowsDoNotMove(t *testing.T) {
	tb := NewTable(Config{MaxFlows: 5 * chunkLen})
	const n = 3*chunkLen + 7
	ptrs := make([]*Flow, n)
	for i := range n {
		k, _ := MakeKey(c, s, uint16(i), 443, 6)
		f, isNew := tb.Lookup(k, 1, true)
		if !isNew {
			t.Fatalf("flow %d not new", i)
		}
		f.Packets[0] = uint64(i)
		ptrs[i] = f
	}
	if len(tb.chunks) != 4 {
		t.Fatalf("%d chunks for %d flows, want 4", len(tb.chunks), n)
	}
	for i := range n {
		k, _ := MakeKey(c, s, uint16(i), 443, 6)
		f, isNew := tb.Lookup(k, 1, true)
		if isNew || f != ptrs[i] || f.Packets[0] != uint64(i) || tb.Get(k) != f {
			t.Fatalf("flow %d moved or lost: new %v, %p vs %p, packets %d", i, isNew, f, ptrs[i], f.Packets[0])
		}
	}
}

// TestHalfOpenTimeout: a flow seen in one direction only (a SYN, a
// datagram without reply) expires after NewTimeout; one that got an
// answer lives for its protocol's timeout.
func TestHalfOpenTimeout(t *testing.T) {
	tb := NewTable(Config{MaxFlows: 10, SweepEvery: time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	syn, _ := MakeKey(c, s, 5001, 443, 6)
	est, _ := MakeKey(c, s, 5002, 443, 6)
	udp, _ := MakeKey(c, s, 5003, 443, 17)
	for _, k := range []Key{syn, est, udp} {
		f, _ := tb.Lookup(k, t0, true)
		f.Packets[FromClient]++
	}
	tb.Get(est).Packets[FromServer]++
	tb.Sweep(t0 + int64(29*time.Second))
	if tb.Len() != 3 {
		t.Fatalf("after 29s: %d flows", tb.Len())
	}
	tb.Sweep(t0 + int64(31*time.Second))
	if tb.Len() != 1 || tb.Get(est) == nil {
		t.Fatalf("after 31s: %d flows, established one kept: %v", tb.Len(), tb.Get(est) != nil)
	}
	tb.Sweep(t0 + int64(4*time.Minute))
	if tb.Get(est) == nil {
		t.Fatal("established TCP flow expired before its 5 minutes")
	}
}

// TestEvictWhenFull: a full table makes room for a new flow by evicting
// the one nearest its expiry among a few, never a gathering one while
// another will do, and says so to OnExpire.
func TestEvictWhenFull(t *testing.T) {
	const n = 8 // = evictWindow: every entry is a candidate
	tb := NewTable(Config{MaxFlows: n})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var evicted []Key
	tb.OnExpire = func(f *Flow) {
		if !tb.Evicting() {
			t.Error("OnExpire not told of an eviction")
		}
		evicted = append(evicted, f.Key)
	}
	keys := make([]Key, n)
	for i := range keys {
		keys[i], _ = MakeKey(c, s, uint16(6000+i), 443, 6)
		f, _ := tb.Lookup(keys[i], t0+int64(i)*int64(time.Millisecond), true)
		f.Packets = [2]uint64{1, 1} // established
	}
	// The oldest is gathering; the next oldest half-open: it goes first
	// (30 s to live, against 5 minutes).
	tb.Get(keys[0]).G[0] = new(Gather)
	tb.Get(keys[5]).Packets[FromServer] = 0
	now := t0 + int64(time.Second)
	k, _ := MakeKey(c, s, 7000, 443, 6)
	f, isNew := tb.Lookup(k, now, true)
	if f == nil || !isNew {
		t.Fatal("no room made")
	}
	f.Packets = [2]uint64{1, 1}
	if len(evicted) != 1 || evicted[0] != keys[5] {
		t.Fatalf("evicted %v, want the half-open flow %v", evicted, keys[5])
	}
	// Then the established ones, least recently seen first; the
	// gathering one last.
	tb.Get(keys[1]).Last = now // seen again
	for i := range 6 {
		k, _ := MakeKey(c, s, uint16(7001+i), 443, 6)
		f, _ := tb.Lookup(k, now+int64(i+1)*int64(time.Millisecond), true)
		f.Packets = [2]uint64{1, 1}
	}
	want := []Key{keys[5], keys[2], keys[3], keys[4], keys[6], keys[7], keys[1]}
	if len(evicted) != len(want) {
		t.Fatalf("evicted %d flows, want %d", len(evicted), len(want))
	}
	for i := range want {
		if evicted[i] != want[i] {
			t.Fatalf("eviction %d: port %d, want %d", i, evicted[i].PA, want[i].PA)
		}
	}
	if tb.Get(keys[0]) == nil {
		t.Fatal("the gathering flow was evicted while others could be")
	}
	if tb.Stats.Evicted != 7 || tb.Stats.Refused != 0 || tb.Len() != n {
		t.Fatalf("stats %+v, len %d", tb.Stats, tb.Len())
	}
	tb.Get(keys[0]).G[0] = nil
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

// TestWordsAreAs16: words reads netip.Addr's own fields; this fails if Go
// changes their layout (IPv4, IPv4-mapped, IPv6, zoned IPv6).
func TestWordsAreAs16(t *testing.T) {
	for _, a := range []string{"10.1.2.3", "255.255.255.255", "0.0.0.0", "::ffff:192.0.2.1", "2001:db8::1", "fe80::1%eth0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::"} {
		ip := netip.MustParseAddr(a)
		b := ip.As16()
		hi, lo := words(ip)
		if hi != binary.BigEndian.Uint64(b[:8]) || lo != binary.BigEndian.Uint64(b[8:]) {
			t.Errorf("%s: words %#x %#x, As16 %x", a, hi, lo, b)
		}
		if got := addr(hi, lo); got != ip.WithZone("").Unmap() {
			t.Errorf("%s: back to %s", a, got)
		}
	}
}
