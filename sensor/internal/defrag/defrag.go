// Package defrag reassembles fragmented IPv4 and IPv6 datagrams. A Table
// serves one worker and is not safe for concurrent use: all fragments of a
// datagram hash alike (decode.FlowHash), so they reach the same worker.
//
// The table is bounded in datagrams, in buffer bytes and in time (packet
// time, never wall time), so a flood of fragments that never complete costs
// a fixed amount of memory and evicts the oldest work first.
//
// Overlaps follow the "first" policy: a byte, once held, is never
// rewritten; later fragments only fill the gaps. Exact duplicates (the
// common, harmless overlap: a capture seeing a fragment twice) are then
// no-ops, and no fragment arriving later can change data already taken in.
// Hosts differ here (RFC 5722 hosts and current Linux drop a datagram with
// overlapping fragments altogether; older stacks keep first or last data),
// so no single policy matches every receiver; overlaps are counted so that
// a sensor can tell when its view may differ from the host's.
package defrag

import (
	"math/bits"
	"net/netip"
	"time"
)

// Key identifies a datagram being reassembled: addresses, protocol and
// identification (RFC 791; RFC 8200 section 4.5). It holds no pointers, so
// the index map is not scanned by the garbage collector, and building one
// allocates nothing.
type Key struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool // keeps IPv4 apart from IPv6 between v4-mapped addresses
}

// IPv4Key returns the key of an IPv4 fragment (16-bit identification).
func IPv4Key(src, dst netip.Addr, proto uint8, id uint16) Key {
	return Key{src: src.As16(), dst: dst.As16(), id: uint32(id), proto: proto}
}

// IPv6Key returns the key of an IPv6 fragment (32-bit identification);
// proto is the Next Header of the Fragment header.
func IPv6Key(src, dst netip.Addr, proto uint8, id uint32) Key {
	return Key{src: src.As16(), dst: dst.As16(), id: id, proto: proto, v6: true}
}

// Config bounds a Table. Zero or negative fields take DefaultConfig's.
type Config struct {
	// MaxDatagrams caps the datagrams in progress; a new one beyond it
	// evicts the oldest.
	MaxDatagrams int
	// MaxBytes caps the reassembly buffers held, in progress and pooled
	// for reuse together; the oldest datagrams are evicted to stay under
	// it. It should be at least twice MaxDatagramSize, as a buffer that
	// grows is copied.
	MaxBytes int
	// MaxDatagramSize is the largest reassembled payload; a fragment
	// ending beyond it drops its datagram. Capped at 16 MiB.
	MaxDatagramSize int
	// Timeout is how long, in packet time from its first fragment, a
	// datagram may stay incomplete.
	Timeout time.Duration
}

// DefaultConfig follows Linux's defaults where it has them: 4 MiB of
// fragment memory (ipfrag_high_thresh) and 30 s (ipfrag_time) — a receiver
// gives up then, so a sensor waiting longer would reassemble datagrams the
// receiver never saw. 65535 is the largest IP datagram.
var DefaultConfig = Config{
	MaxDatagrams:    1024,
	MaxBytes:        4 << 20,
	MaxDatagramSize: 65535,
	Timeout:         30 * time.Second,
}

const (
	maxSize = 1 << 24
	// maxPieces caps the disjoint byte ranges of one datagram, which
	// bounds the work and memory per fragment. A 64 KiB datagram in
	// 576-byte fragments arriving in any order has at most 60.
	maxPieces = 128
	// Buffers come in power-of-two size classes from 1 KiB, the largest
	// being MaxDatagramSize, so that pooled buffers fit later datagrams.
	minShift = 10
	minBuf   = 1 << minShift
)

// Stats counts table events. Plain counters: one Table per worker.
type Stats struct {
	Fragments   uint64 // fragments added
	Reassembled uint64 // datagrams completed
	Timeouts    uint64 // datagrams expired incomplete
	Evicted     uint64 // datagrams dropped incomplete to stay within MaxDatagrams or MaxBytes
	Overlaps    uint64 // fragments overlapping data already held (duplicates included); the first data is kept
	Invalid     uint64 // fragments no well-formed datagram can have: beyond MaxDatagramSize, against the known total, empty, too scattered; their datagram is dropped
	InProgress  int    // datagrams being reassembled now
}

// Add adds o to s.
func (s *Stats) Add(o *Stats) {
	s.Fragments += o.Fragments
	s.Reassembled += o.Reassembled
	s.Timeouts += o.Timeouts
	s.Evicted += o.Evicted
	s.Overlaps += o.Overlaps
	s.Invalid += o.Invalid
	s.InProgress += o.InProgress
}

// span is a received byte range [lo, hi).
type span struct{ lo, hi int32 }

type entry struct {
	key        Key
	first      int64  // packet time of the first fragment
	total      int    // datagram length once the last fragment is in; -1 before
	buf        []byte // len == cap == its size class; nil until data arrives
	pieces     []span // sorted, disjoint and not touching
	prev, next int32  // age list, oldest first; -1 at the ends
}

func (e *entry) extent() int {
	if n := len(e.pieces); n > 0 {
		return int(e.pieces[n-1].hi)
	}
	return 0
}

// Table holds the datagrams being reassembled. Entries live in one slice
// indexed by the map, linked oldest first by creation, which is also
// expiry order; entries, their piece lists and buffers are reused, so a
// steady state allocates nothing.
type Table struct {
	cfg        Config
	index      map[Key]int32
	entries    []entry
	slots      []int32 // free entries
	head, tail int32   // oldest and newest entry, -1 when empty
	classes    []int   // buffer size of each class
	pool       [][][]byte
	held       int // bytes of all buffers: in progress and pooled
	pooled     int // bytes of pooled buffers
	Stats      Stats
}

// New returns an empty table.
func New(cfg Config) *Table {
	d := DefaultConfig
	if cfg.MaxDatagrams <= 0 {
		cfg.MaxDatagrams = d.MaxDatagrams
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = d.MaxBytes
	}
	if cfg.MaxDatagramSize <= 0 {
		cfg.MaxDatagramSize = d.MaxDatagramSize
	}
	cfg.MaxDatagramSize = min(cfg.MaxDatagramSize, maxSize)
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	t := &Table{cfg: cfg, index: make(map[Key]int32, min(cfg.MaxDatagrams, 4096)), head: -1, tail: -1}
	for size := minBuf; ; size <<= 1 {
		if size >= cfg.MaxDatagramSize {
			t.classes = append(t.classes, cfg.MaxDatagramSize)
			break
		}
		t.classes = append(t.classes, size)
	}
	t.pool = make([][][]byte, len(t.classes))
	return t
}

// Config returns the table's configuration with defaults applied.
func (t *Table) Config() Config { return t.cfg }

// Len returns the number of datagrams in progress.
func (t *Table) Len() int { return len(t.index) }

// Bytes returns the bytes of reassembly buffers held, in progress and
// pooled; it never exceeds MaxBytes.
func (t *Table) Bytes() int { return t.held }

// Add adds a fragment of datagram k: payload at byte offset of the
// datagram's payload (the transport header and data), more when further
// fragments follow (IPv4 MF, IPv6 M), seen at packet time ts (Unix
// nanoseconds). The data is copied.
//
// When the fragment completes the datagram, Add returns the reassembled
// payload and true, and frees the entry; the returned slice is valid until
// the next call on the table.
func (t *Table) Add(k Key, offset int, more bool, payload []byte, ts int64) (datagram []byte, ok bool) {
	t.Stats.Fragments++
	t.Expire(ts)
	i, found := t.index[k]
	if !found {
		i = -1
	}
	size := t.cfg.MaxDatagramSize
	if offset < 0 || offset > size || len(payload) > size-offset || (more || offset == 0) && len(payload) == 0 {
		// Out of range, or an empty fragment that is not the last one
		// (or an empty whole datagram): nothing a sender would send.
		t.invalid(i)
		return nil, false
	}
	end := offset + len(payload)
	if i < 0 {
		i = t.create(k, ts)
	}
	e := &t.entries[i]
	if !more {
		if e.total >= 0 && e.total != end || e.extent() > end {
			t.invalid(i)
			return nil, false
		}
		e.total = end
	} else if e.total >= 0 && end > e.total {
		t.invalid(i)
		return nil, false
	}
	if len(payload) > 0 {
		need := end
		if e.total >= 0 {
			need = e.total // size the buffer once when the end is known
		}
		if !t.reserve(i, need) {
			t.release(i)
			t.Stats.Evicted++
			return nil, false
		}
		e = &t.entries[i]
		overlap, fits := e.insert(offset, payload)
		if !fits {
			t.invalid(i)
			return nil, false
		}
		if overlap {
			t.Stats.Overlaps++
		}
	}
	if e.total > 0 && len(e.pieces) == 1 && e.pieces[0].lo == 0 && int(e.pieces[0].hi) == e.total {
		dg := e.buf[:e.total]
		t.release(i) // the buffer goes to the pool: untouched until the next Add
		t.Stats.Reassembled++
		return dg, true
	}
	return nil, false
}

// Expire drops the datagrams whose first fragment is more than Timeout
// away from packet time now. Either way: a clock that steps back (merged
// captures) must not pin entries until it catches up again. Add calls it;
// callers may also call it on packets without fragments so that idle
// entries go in time. It looks at the oldest entry only, unless it drops it.
func (t *Table) Expire(now int64) {
	to := int64(t.cfg.Timeout)
	for t.head >= 0 {
		age := now - t.entries[t.head].first
		if age <= to && age >= -to {
			return
		}
		t.release(t.head)
		t.Stats.Timeouts++
	}
}

// invalid counts a malformed fragment and drops its datagram, if any.
func (t *Table) invalid(i int32) {
	t.Stats.Invalid++
	if i >= 0 {
		t.release(i)
	}
}

// create adds an empty entry for k at the tail of the age list, evicting
// the oldest when the table is full.
func (t *Table) create(k Key, ts int64) int32 {
	if len(t.index) >= t.cfg.MaxDatagrams {
		t.release(t.head)
		t.Stats.Evicted++
	}
	var i int32
	if n := len(t.slots); n > 0 {
		i = t.slots[n-1]
		t.slots = t.slots[:n-1]
	} else {
		t.entries = append(t.entries, entry{})
		i = int32(len(t.entries) - 1)
	}
	e := &t.entries[i]
	e.key, e.first, e.total, e.buf, e.pieces = k, ts, -1, nil, e.pieces[:0]
	e.prev, e.next = t.tail, -1
	if t.tail >= 0 {
		t.entries[t.tail].next = i
	} else {
		t.head = i
	}
	t.tail = i
	t.index[k] = i
	t.Stats.InProgress = len(t.index)
	return i
}

// release removes entry i; its buffer goes to the pool.
func (t *Table) release(i int32) {
	e := &t.entries[i]
	delete(t.index, e.key)
	if e.prev >= 0 {
		t.entries[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.entries[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	if e.buf != nil {
		t.put(e.buf)
		e.buf = nil
	}
	e.pieces = e.pieces[:0]
	t.slots = append(t.slots, i)
	t.Stats.InProgress = len(t.index)
}

// reserve makes entry i's buffer hold at least n bytes, keeping what it
// holds. It reports false when n bytes cannot fit under MaxBytes even
// after evicting every other datagram.
func (t *Table) reserve(i int32, n int) bool {
	if len(t.entries[i].buf) >= n {
		return true
	}
	b := t.take(t.class(n), i)
	if b == nil {
		return false
	}
	e := &t.entries[i]
	if e.buf != nil {
		copy(b, e.buf[:e.extent()])
		t.put(e.buf)
	}
	e.buf = b
	return true
}

// class returns the smallest size class holding n bytes.
func (t *Table) class(n int) int {
	c := 0
	if n > minBuf {
		c = bits.Len(uint(n-1)) - minShift
	}
	return min(c, len(t.classes)-1)
}

// take returns a buffer of class c: pooled if there is one, else new,
// freeing pooled buffers of other classes and then evicting the oldest
// datagrams (never entry keep) to stay within MaxBytes.
func (t *Table) take(c int, keep int32) []byte {
	size := t.classes[c]
	for {
		if n := len(t.pool[c]); n > 0 {
			b := t.pool[c][n-1]
			t.pool[c] = t.pool[c][:n-1]
			t.pooled -= size
			return b
		}
		if t.held+size <= t.cfg.MaxBytes {
			t.held += size
			return make([]byte, size)
		}
		if t.pooled > 0 {
			t.dropPooled()
			continue
		}
		j := t.head
		if j == keep {
			j = t.entries[j].next
		}
		if j < 0 {
			return nil
		}
		t.release(j)
		t.Stats.Evicted++
	}
}

// put pools buffer b. The pool needs no bound of its own: held counts it.
func (t *Table) put(b []byte) {
	c := t.class(len(b))
	t.pool[c] = append(t.pool[c], b)
	t.pooled += len(b)
}

// dropPooled lets the largest pooled buffer go.
func (t *Table) dropPooled() {
	for c := len(t.pool) - 1; c >= 0; c-- {
		if n := len(t.pool[c]); n > 0 {
			t.pool[c][n-1] = nil
			t.pool[c] = t.pool[c][:n-1]
			t.held -= t.classes[c]
			t.pooled -= t.classes[c]
			return
		}
	}
}

// insert copies the bytes of p, at offset lo, that the datagram does not
// hold yet (first data wins) and records the range. It reports whether p
// overlapped data already held, and fits false when the datagram would
// exceed maxPieces ranges.
func (e *entry) insert(lo int, p []byte) (overlap, fits bool) {
	hi := lo + len(p)
	ps := e.pieces
	i := 0
	for i < len(ps) && int(ps[i].hi) < lo {
		i++
	}
	// ps[i:j] overlap or touch [lo, hi): copy the gaps between them.
	j, cur := i, lo
	for ; j < len(ps) && int(ps[j].lo) <= hi; j++ {
		s := ps[j]
		if int(s.lo) > cur {
			copy(e.buf[cur:], p[cur-lo:int(s.lo)-lo])
		}
		if int(s.lo) < hi && int(s.hi) > lo {
			overlap = true
		}
		cur = max(cur, int(s.hi))
	}
	if cur < hi {
		copy(e.buf[cur:hi], p[cur-lo:])
	}
	if i == j {
		if len(ps) >= maxPieces {
			return overlap, false
		}
		ps = append(ps, span{})
		copy(ps[i+1:], ps[i:])
		ps[i] = span{int32(lo), int32(hi)}
	} else {
		ps[i] = span{min(int32(lo), ps[i].lo), max(int32(hi), ps[j-1].hi)}
		ps = append(ps[:i+1], ps[j:]...)
	}
	e.pieces = ps
	return overlap, true
}
