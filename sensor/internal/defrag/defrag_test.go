package defrag

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("198.51.100.2")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
)

// pattern returns n bytes that differ from offset to offset, so that a
// misplaced copy shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>8) ^ seed
	}
	return b
}

type frag struct {
	off  int
	more bool
}

// split cuts dg into fragments of at most size bytes (a multiple of 8).
func split(dg []byte, size int) []frag {
	var fs []frag
	for off := 0; off < len(dg); off += size {
		fs = append(fs, frag{off, off+size < len(dg)})
	}
	return fs
}

func add(t *testing.T, tb *Table, k Key, dg []byte, f frag, size int, ts int64) ([]byte, bool) {
	t.Helper()
	end := min(f.off+size, len(dg))
	return tb.Add(k, f.off, f.more, dg[f.off:end], ts)
}

func TestOrders(t *testing.T) {
	dg := pattern(3000, 1)
	const size = 1232
	fs := split(dg, size) // 3 fragments
	orders := map[string][]int{
		"in order":  {0, 1, 2},
		"reverse":   {2, 1, 0},
		"last 2nd":  {0, 2, 1},
		"first 2nd": {1, 0, 2},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			tb := New(Config{})
			k := IPv4Key(src4, dst4, 17, 0x1234)
			for n, i := range order {
				got, ok := add(t, tb, k, dg, fs[i], size, int64(n))
				if n < len(order)-1 {
					if ok {
						t.Fatalf("complete after %d fragments", n+1)
					}
					continue
				}
				if !ok || !bytes.Equal(got, dg) {
					t.Fatalf("ok %v, got %d bytes, want %d equal", ok, len(got), len(dg))
				}
			}
			if tb.Len() != 0 || tb.Stats.Reassembled != 1 || tb.Stats.InProgress != 0 || tb.Stats.Fragments != 3 {
				t.Errorf("after: len %d stats %+v", tb.Len(), tb.Stats)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	dg := pattern(2000, 2)
	tb := New(Config{})
	k := IPv4Key(src4, dst4, 17, 1)
	if _, ok := tb.Add(k, 0, true, dg[:1480], 0); ok {
		t.Fatal("complete early")
	}
	if _, ok := tb.Add(k, 0, true, dg[:1480], 0); ok {
		t.Fatal("complete on duplicate")
	}
	got, ok := tb.Add(k, 1480, false, dg[1480:], 0)
	if !ok || !bytes.Equal(got, dg) {
		t.Fatalf("ok %v len %d", ok, len(got))
	}
	// a late duplicate starts a new datagram, which times out
	if _, ok := tb.Add(k, 1480, false, dg[1480:], 0); ok {
		t.Fatal("late duplicate completes")
	}
	tb.Expire(int64(time.Minute))
	if s := tb.Stats; s.Overlaps != 1 || s.Reassembled != 1 || s.Timeouts != 1 || s.InProgress != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestOverlapFirstWins(t *testing.T) {
	dg := pattern(64, 3)
	other := pattern(64, 0xff) // differs from dg everywhere
	tb := New(Config{})
	k := IPv6Key(src6, dst6, 17, 7)
	tb.Add(k, 16, true, dg[16:32], 0)
	tb.Add(k, 40, true, dg[40:48], 0)
	// covers [8, 56): the held pieces [16,32) and [40,48) must stay
	tb.Add(k, 8, true, other[8:56], 0)
	tb.Add(k, 0, true, dg[0:16], 0) // overlaps [8,16) from other
	got, ok := tb.Add(k, 56, false, dg[56:], 0)
	if !ok {
		t.Fatal("not complete")
	}
	want := append([]byte(nil), dg...)
	copy(want[8:16], other[8:16])
	copy(want[32:40], other[32:40])
	copy(want[48:56], other[48:56])
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	if tb.Stats.Overlaps != 2 {
		t.Errorf("overlaps %d, want 2", tb.Stats.Overlaps)
	}
}

func TestMissingMiddleTimesOut(t *testing.T) {
	dg := pattern(3000, 4)
	tb := New(Config{Timeout: 10 * time.Second})
	k := IPv4Key(src4, dst4, 6, 9)
	sec := int64(time.Second)
	tb.Add(k, 0, true, dg[:1000], 100*sec)
	tb.Add(k, 2000, false, dg[2000:], 101*sec)
	tb.Expire(110 * sec) // 10 s after the first fragment: not yet
	if tb.Len() != 1 {
		t.Fatalf("expired early: %+v", tb.Stats)
	}
	// the middle arrives too late: the datagram was dropped, so it
	// starts anew and does not complete
	if _, ok := tb.Add(k, 1000, true, dg[1000:2000], 111*sec); ok {
		t.Fatal("completed after the timeout")
	}
	if s := tb.Stats; s.Timeouts != 1 || s.InProgress != 1 {
		t.Errorf("stats %+v", s)
	}
	// a clock stepping back by more than the timeout expires too
	tb.Expire(50 * sec)
	if s := tb.Stats; s.Timeouts != 2 || s.InProgress != 0 || tb.Bytes() > tb.Config().MaxBytes {
		t.Errorf("stats %+v", s)
	}
}

func TestInvalid(t *testing.T) {
	dg := pattern(3000, 5)
	k := IPv4Key(src4, dst4, 17, 11)
	cases := []struct {
		name  string
		frags func(tb *Table)
	}{
		{"total conflict", func(tb *Table) {
			tb.Add(k, 2000, false, dg[2000:], 0)
			tb.Add(k, 1000, false, dg[1000:2000], 0)
		}},
		{"data beyond the total", func(tb *Table) {
			tb.Add(k, 2000, false, dg[2000:2500], 0)
			tb.Add(k, 2000, true, dg[2000:2600], 0)
		}},
		{"total below data held", func(tb *Table) {
			tb.Add(k, 1000, true, dg[1000:2000], 0)
			tb.Add(k, 0, false, dg[:1500], 0)
		}},
		{"oversize", func(tb *Table) {
			tb.Add(k, 0, true, dg[:1480], 0)
			tb.Add(k, 65528, false, dg[:100], 0)
		}},
		{"empty middle fragment", func(tb *Table) {
			tb.Add(k, 0, true, dg[:1480], 0)
			tb.Add(k, 1480, true, nil, 0)
		}},
		{"negative offset", func(tb *Table) {
			tb.Add(k, 0, true, dg[:1480], 0)
			tb.Add(k, -8, true, dg[:8], 0)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := New(Config{})
			c.frags(tb)
			if s := tb.Stats; s.Invalid != 1 || s.InProgress != 0 || tb.Len() != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
	t.Run("too scattered", func(t *testing.T) {
		tb := New(Config{})
		for i := range maxPieces + 1 {
			tb.Add(k, i*16, true, dg[i*16:i*16+8], 0)
		}
		if s := tb.Stats; s.Invalid != 1 || s.InProgress != 0 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("empty last fragment", func(t *testing.T) {
		tb := New(Config{})
		tb.Add(k, 0, true, dg[:1480], 0)
		got, ok := tb.Add(k, 1480, false, nil, 0) // valid: it gives the total
		if !ok || !bytes.Equal(got, dg[:1480]) || tb.Stats.Invalid != 0 {
			t.Errorf("ok %v len %d stats %+v", ok, len(got), tb.Stats)
		}
	})
}

func TestEviction(t *testing.T) {
	dg := pattern(3000, 6)
	t.Run("datagrams", func(t *testing.T) {
		tb := New(Config{MaxDatagrams: 4})
		for id := range uint16(6) {
			tb.Add(IPv4Key(src4, dst4, 17, id), 0, true, dg[:1480], int64(id))
		}
		if s := tb.Stats; s.Evicted != 2 || s.InProgress != 4 {
			t.Fatalf("stats %+v", s)
		}
		// the oldest two went; the others still complete (newest first,
		// as a new entry for 0 or 1 would evict the oldest again)
		for id := uint16(5); id < 6; id-- {
			_, ok := tb.Add(IPv4Key(src4, dst4, 17, id), 1480, false, dg[1480:], 10)
			if ok != (id >= 2) {
				t.Errorf("id %d: complete %v", id, ok)
			}
		}
	})
	t.Run("bytes", func(t *testing.T) {
		// 2 KiB buffers (1480 bytes): three fit in 6 KiB
		tb := New(Config{MaxBytes: 6 << 10})
		for id := range uint16(5) {
			tb.Add(IPv4Key(src4, dst4, 17, id), 0, true, dg[:1480], int64(id))
			if tb.Bytes() > 6<<10 {
				t.Fatalf("bytes %d", tb.Bytes())
			}
		}
		if s := tb.Stats; s.Evicted != 2 || s.InProgress != 3 {
			t.Fatalf("stats %+v", s)
		}
		// growing the newest to 4 KiB evicts the oldest ones, not it
		got, ok := tb.Add(IPv4Key(src4, dst4, 17, 4), 1480, false, dg[1480:], 10)
		if !ok || !bytes.Equal(got, dg) || tb.Bytes() > 6<<10 {
			t.Fatalf("ok %v bytes %d stats %+v", ok, tb.Bytes(), tb.Stats)
		}
	})
	t.Run("too big for MaxBytes", func(t *testing.T) {
		tb := New(Config{MaxBytes: 2 << 10})
		tb.Add(IPv4Key(src4, dst4, 17, 1), 0, false, dg, 0)
		if s := tb.Stats; s.Evicted != 1 || s.InProgress != 0 || tb.Bytes() > 2<<10 {
			t.Fatalf("stats %+v bytes %d", s, tb.Bytes())
		}
	})
}

func TestIPv6Identification(t *testing.T) {
	dg := pattern(2000, 7)
	tb := New(Config{})
	// ids equal in their low 16 bits, and an IPv4 datagram between the
	// same (mapped) addresses with the same id, stay apart
	ka := IPv6Key(src6, dst6, 17, 0x0001_0005)
	kb := IPv6Key(src6, dst6, 17, 0x0002_0005)
	m1, m2 := netip.AddrFrom16(src4.As16()), netip.AddrFrom16(dst4.As16())
	kc := IPv4Key(src4, dst4, 17, 5)
	kd := IPv6Key(m1, m2, 17, 5)
	for _, k := range []Key{ka, kb, kc, kd} {
		tb.Add(k, 0, true, dg[:1000], 0)
	}
	if tb.Len() != 4 {
		t.Fatalf("len %d", tb.Len())
	}
	for _, k := range []Key{ka, kb, kc, kd} {
		if got, ok := tb.Add(k, 1000, false, dg[1000:], 0); !ok || !bytes.Equal(got, dg) {
			t.Fatalf("key %+v: ok %v", k, ok)
		}
	}
}

func TestStatsAdd(t *testing.T) {
	a := Stats{1, 2, 3, 4, 5, 6, 7}
	a.Add(&Stats{10, 20, 30, 40, 50, 60, 70})
	if a != (Stats{11, 22, 33, 44, 55, 66, 77}) {
		t.Errorf("%+v", a)
	}
}

// fuzzRef and fuzzAlt are the data of FuzzTable's fragments: consistent,
// and "dirty".
var fuzzRef, fuzzAlt = pattern(70000, 0x5a), pattern(70000, 0xa5)

// FuzzTable adds a sequence of fragments derived from the input to a small
// table. Fragments of a datagram carry consistent data unless marked
// "dirty", so a reassembled datagram can be checked byte for byte.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 3, 40, 0, 0, 10, 1, 0, 0, 10, 0, 10, 12, 0})
	f.Add([]byte{0x8f, 0x33, 0, 0, 0, 0xff, 0xff, 0, 2, 0, 0x80, 0xff, 0xff, 0x10, 0, 0x80, 0, 0, 0x20, 0, 0x80})
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 30))
	f.Fuzz(func(t *testing.T, in []byte) { fragmentSequence(t, in) })
}

// fragmentSequence is FuzzTable's body; it returns the table's stats.
func fragmentSequence(t testing.TB, in []byte) Stats {
	if len(in) < 2 {
		return Stats{}
	}
	cfg := Config{
		MaxDatagrams:    int(in[0]&7) + 1,
		MaxBytes:        []int{3 << 10, 6 << 10, 9 << 10, 16 << 10, 24 << 10, 64 << 10, 160 << 10, 1 << 20}[in[0]>>3&7],
		MaxDatagramSize: []int{1500, 3000, 65535, 9000}[in[1]&3],
		Timeout:         time.Duration(in[1]>>2&7+1) * time.Second,
	}
	tb := New(cfg)
	in = in[2:]
	const nkeys = 4
	keys := [nkeys]Key{
		IPv4Key(src4, dst4, 17, 1), IPv4Key(src4, dst4, 17, 2),
		IPv6Key(src6, dst6, 17, 1), IPv6Key(src6, dst6, 6, 0x10001),
	}
	// what the harness knows of each datagram since it began
	type track struct {
		maxEnd  int
		unknown bool // a drop may have restarted it unseen
		dirty   bool // it took data not from the pattern
	}
	var tr [nkeys]track
	ref, alt := fuzzRef, fuzzAlt
	var ts int64
	for len(in) >= 5 {
		op := in[0]
		kid := int(op & 3)
		more := op&4 != 0
		dirty := op&8 != 0
		// time steps: mostly small, sometimes a jump either way
		switch op >> 4 {
		case 15:
			ts += int64(20 * time.Second)
		case 14:
			ts -= int64(20 * time.Second)
		default:
			ts += int64(op>>4) * int64(time.Millisecond)
		}
		off := int(in[1])<<8 | int(in[2])
		if in[1]&0x80 == 0 {
			off &= 0x3ff8 // mostly aligned offsets in range
		}
		n := int(in[3])<<4 | int(in[4]>>4)
		if in[4]&1 != 0 {
			n = -1 // negative offset
		}
		in = in[5:]
		src := ref
		if dirty {
			src = alt
		}
		var payload []byte
		var offset int
		if n < 0 {
			offset, payload = -off-1, src[:8]
		} else {
			offset = off
			payload = src[off : off+n]
		}
		before := tb.Stats
		dg, ok := tb.Add(keys[kid], offset, more, payload, ts)
		s := tb.Stats
		if s.Timeouts != before.Timeouts || s.Evicted != before.Evicted || s.Invalid != before.Invalid {
			for i := range tr {
				tr[i].unknown = true
			}
		}
		k := &tr[kid]
		if offset >= 0 {
			k.maxEnd = max(k.maxEnd, offset+len(payload))
		}
		k.dirty = k.dirty || dirty
		if ok {
			if len(dg) == 0 || len(dg) > cfg.MaxDatagramSize {
				t.Fatalf("datagram of %d bytes", len(dg))
			}
			if !more && len(dg) != offset+len(payload) {
				t.Fatalf("datagram of %d bytes, last fragment ends at %d", len(dg), offset+len(payload))
			}
			if !k.unknown && len(dg) != k.maxEnd {
				t.Fatalf("datagram of %d bytes, highest end %d", len(dg), k.maxEnd)
			}
			if !k.unknown && !k.dirty && !bytes.Equal(dg, ref[:len(dg)]) {
				t.Fatalf("datagram content differs")
			}
			*k = track{}
		}
		if tb.Bytes() < 0 || tb.Bytes() > cfg.MaxBytes || tb.pooled < 0 || tb.pooled > tb.held {
			t.Fatalf("bytes %d pooled %d, max %d", tb.Bytes(), tb.pooled, cfg.MaxBytes)
		}
		if tb.Len() > cfg.MaxDatagrams || s.InProgress != tb.Len() || s.Fragments != before.Fragments+1 {
			t.Fatalf("len %d stats %+v", tb.Len(), s)
		}
	}
	// the accounting adds up: buffers in progress plus pooled
	inUse := 0
	for _, i := range tb.index {
		inUse += len(tb.entries[i].buf)
	}
	if inUse+tb.pooled != tb.held {
		t.Fatalf("in use %d + pooled %d != held %d", inUse, tb.pooled, tb.held)
	}
	n := 0
	for i := tb.head; i >= 0; i = tb.entries[i].next {
		n++
	}
	if n != tb.Len() {
		t.Fatalf("age list has %d entries, index %d", n, tb.Len())
	}
	return tb.Stats
}

// TestFragmentSequenceReach runs FuzzTable's body on random sequences
// biased towards datagrams that complete, and checks that it reaches
// every outcome the fuzzer is meant to explore.
func TestFragmentSequenceReach(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Stats
	for range 5000 {
		in := make([]byte, 2+5*r.IntN(40))
		for i := range in {
			in[i] = byte(r.Uint32())
		}
		for j := 2; j+5 <= len(in); j += 5 {
			if r.IntN(4) != 0 { // small aligned offsets and lengths
				in[j+1], in[j+2], in[j+3] = 0, in[j+2]&0x18, byte(r.IntN(3))
				in[j+4] &^= 1
			}
		}
		st := fragmentSequence(t, in)
		s.Add(&st)
	}
	t.Logf("%+v", s)
	if s.Reassembled == 0 || s.Overlaps == 0 || s.Evicted == 0 || s.Timeouts == 0 || s.Invalid == 0 || s.InProgress == 0 {
		t.Errorf("an outcome is never reached: %+v", s)
	}
}

// BenchmarkTwoFragments reassembles a 1700-byte datagram from two
// fragments, the shape of a large DNS response.
func BenchmarkTwoFragments(b *testing.B) {
	dg := pattern(1700, 8)
	tb := New(Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(dg)))
	var id uint16
	for b.Loop() {
		id++
		k := IPv4Key(src4, dst4, 17, id)
		tb.Add(k, 0, true, dg[:1480], int64(id))
		if _, ok := tb.Add(k, 1480, false, dg[1480:], int64(id)); !ok {
			b.Fatal("not complete")
		}
	}
}

// BenchmarkFlood adds first fragments that never complete: the table
// stays full and each fragment evicts the oldest datagram.
func BenchmarkFlood(b *testing.B) {
	dg := pattern(1480, 9)
	tb := New(Config{})
	b.ReportAllocs()
	var id uint32
	for b.Loop() {
		id++
		tb.Add(IPv6Key(src6, dst6, 17, id), 0, true, dg, int64(id))
	}
	if tb.Len() != min(int(id), 1024) {
		b.Fatalf("len %d", tb.Len())
	}
}
