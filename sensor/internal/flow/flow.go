// Package flow keeps the per-worker flow table: bounded, expired on packet
// time, not safe for concurrent use (one table per worker).
package flow

import (
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"
)

// Key identifies a flow in both directions: the lower endpoint first.
// Addresses are held as big-endian words (IPv4 mapped into IPv6), not as
// [16]byte: Go keeps arrays in memory, and filling them from netip.Addr's
// words then copying them wider stalled store forwarding, which made
// building a key cost 30 ns.
type Key struct {
	AHi, ALo, BHi, BLo uint64
	PA, PB             uint16
	Proto              uint8
}

// MakeKey returns the key of a packet from src:sp to dst:dp and whether
// the source is endpoint A.
func MakeKey(src, dst netip.Addr, sp, dp uint16, proto uint8) (Key, bool) {
	sh, sl := words(src)
	dh, dl := words(dst)
	if sh < dh || sh == dh && (sl < dl || sl == dl && sp <= dp) {
		return Key{AHi: sh, ALo: sl, BHi: dh, BLo: dl, PA: sp, PB: dp, Proto: proto}, true
	}
	return Key{AHi: dh, ALo: dl, BHi: sh, BLo: sl, PA: dp, PB: sp, Proto: proto}, false
}

// words returns the address as As16 would, in two big-endian words. It
// reads them from netip.Addr itself, whose first field is that pair
// (uint128{hi, lo}): As16 returns an array, and Go copies arrays through
// memory, which stalled store forwarding on every packet.
// TestWordsAreAs16 fails if the layout changes.
func words(a netip.Addr) (hi, lo uint64) {
	w := (*[2]uint64)(unsafe.Pointer(&a))
	return w[0], w[1]
}

func addr(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b).Unmap()
}

// Direction of a packet relative to the flow's client (the side that sent
// the first packet seen, or the SYN).
const (
	FromClient = 0
	FromServer = 1
)

// Flow is the state of one flow. Fields are the worker's to use.
type Flow struct {
	Key       Key
	ClientIsA bool
	First     int64 // packet time, Unix nanoseconds
	Last      int64
	Packets   [2]uint64 // by direction
	Bytes     [2]uint64 // payload bytes by direction
	Closing   bool      // FIN or RST seen
	Inspect   [2]uint8  // payload segments still to look at, by direction
	Kind      uint8     // what the worker learned the flow carries; worker-defined
	NextSeq   [2]uint32 // next expected TCP sequence number, by direction
	HaveSeq   [2]bool
	Buf       [2][]byte  // stream buffers (DNS over TCP), by direction; bounded by the worker
	G         [2]*Gather // stream-start gatherers (ClientHello, request head), by direction; the worker's to pool
	GatherFor [2]uint8   // what each gatherer collects; worker-defined
	SynSeen   [2]bool    // a SYN was seen in this direction, so NextSeq is where its data starts
	Aux       any        // the worker's state for the rare flows that need more (a QUIC assembler)
	Matched   uint32     // non-zero once a contact on this flow matched; worker-defined bits (categories)
	Country   [2]byte    // of the server, when GeoDone
	ASN       uint32
	GeoDone   bool // looked up (once per flow)
	live      bool
}

// Direction returns FromClient or FromServer for a packet whose source is
// endpoint A (srcIsA) or B.
func (f *Flow) Direction(srcIsA bool) int {
	if srcIsA == f.ClientIsA {
		return FromClient
	}
	return FromServer
}

// Endpoints returns the sender and receiver of direction dir.
func (f *Flow) Endpoints(dir int) (src, dst netip.Addr, sport, dport uint16) {
	a, b := addr(f.Key.AHi, f.Key.ALo), addr(f.Key.BHi, f.Key.BLo)
	if (dir == FromClient) == f.ClientIsA {
		return a, b, f.Key.PA, f.Key.PB
	}
	return b, a, f.Key.PB, f.Key.PA
}

// Established reports whether packets were seen in both directions (a
// TCP handshake got an answer, a UDP flow a reply). Until then a flow is
// "new" in Suricata's sense: most likely a scan, a flood or a peer that
// never answers, so it gets a short timeout and is evicted first.
func (f *Flow) Established() bool { return f.Packets[0] > 0 && f.Packets[1] > 0 }

// Gathering reports whether a stream-start gatherer is in progress.
func (f *Flow) Gathering() bool { return f.G[0] != nil || f.G[1] != nil }

// Config bounds a table.
type Config struct {
	MaxFlows    int           // cap on flows; beyond it a new flow evicts an old one, counted
	TCPTimeout  time.Duration // idle timeout of established TCP flows
	UDPTimeout  time.Duration // idle timeout of established UDP flows
	NewTimeout  time.Duration // idle timeout of flows not established (SYN only, one-way UDP), when shorter
	DoneTimeout time.Duration // idle timeout after FIN or RST
	SweepEvery  time.Duration // packet time between expiry sweeps
}

// DefaultConfig is used for zero fields. NewTimeout is Suricata's default
// for its "new" state: a half-open flow cannot hold an entry for the
// 5 minutes an established one may idle.
var DefaultConfig = Config{
	MaxFlows:    262144,
	TCPTimeout:  5 * time.Minute,
	UDPTimeout:  time.Minute,
	NewTimeout:  30 * time.Second,
	DoneTimeout: 10 * time.Second,
	SweepEvery:  5 * time.Second,
}

// Stats counts table events.
type Stats struct {
	Created uint64
	Expired uint64 // flows ended: timed out, evicted or flushed
	Refused uint64 // new flows refused because the table was full and nothing could be evicted
	Evicted uint64 // flows ended early to make room for a new one (the table was full)
	Active  int
	Peak    int
}

// evictWindow is how many entries, from the eviction hand on, are
// compared to choose one to evict: an approximate LRU (CLOCK-like) whose
// cost is a few sequential entries, nothing on the packet path.
const evictWindow = 8

// chunkShift sets how many flows are allocated at a time (1024, about
// 230 KiB). The table grows by whole chunks and never copies a flow:
// growing one slice, by a quarter at a time as Go grows big slices,
// copied every flow some five times over on its way to the peak, and
// the copies cost about 8% of a worker's time on the bench mix. A
// flow's address is also stable for its life.
const (
	chunkShift = 10
	chunkLen   = 1 << chunkShift
)

type chunk = [chunkLen]Flow

// Table is a bounded flow table. Flows live in chunks; the index holds
// their positions, so a steady state allocates nothing.
type Table struct {
	cfg       Config
	index     index
	chunks    []*chunk
	n         int32 // entries handed out (live or free), in the chunks' order
	free      []int32
	lastSweep int64
	hand      int  // next entry the eviction looks at
	evicting  bool // OnExpire is called for an eviction
	Stats     Stats
	// OnExpire, when set, is called with each flow before it is dropped.
	OnExpire func(*Flow)
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	d := DefaultConfig
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = d.MaxFlows
	}
	if cfg.TCPTimeout <= 0 {
		cfg.TCPTimeout = d.TCPTimeout
	}
	if cfg.UDPTimeout <= 0 {
		cfg.UDPTimeout = d.UDPTimeout
	}
	if cfg.NewTimeout <= 0 {
		cfg.NewTimeout = d.NewTimeout
	}
	if cfg.DoneTimeout <= 0 {
		cfg.DoneTimeout = d.DoneTimeout
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = d.SweepEvery
	}
	return &Table{cfg: cfg, index: newIndex(min(cfg.MaxFlows, 4096))}
}

// Lookup returns the flow of key k, creating it at packet time now if
// create is set. When the table is full, the flow closest to its expiry
// among a few (see evict) is ended to make room, as Suricata's emergency
// mode does: a new connection still gets state during a flood. It returns
// nil when the flow does not exist and cannot be created. isNew reports a
// flow created by this call.
func (t *Table) Lookup(k Key, now int64, create bool) (f *Flow, isNew bool) {
	if now-t.lastSweep >= int64(t.cfg.SweepEvery) {
		t.Sweep(now)
	}
	if i := t.index.get(&k, t.chunks); i >= 0 {
		return t.at(i), false
	}
	if !create {
		return nil, false
	}
	if t.index.n >= t.cfg.MaxFlows && !t.evict(now) {
		t.Stats.Refused++
		return nil, false
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.n>>chunkShift == int32(len(t.chunks)) {
			t.chunks = append(t.chunks, new(chunk))
		}
		i = t.n
		t.n++
	}
	f = t.at(i)
	buf := f.Buf
	*f = Flow{Key: k, First: now, Last: now, live: true}
	// keep stream buffers' memory for reuse
	f.Buf[0], f.Buf[1] = buf[0][:0], buf[1][:0]
	t.index.put(&k, i)
	t.Stats.Created++
	if t.index.n > t.Stats.Peak {
		t.Stats.Peak = t.index.n
	}
	t.Stats.Active = t.index.n
	return f, true
}

// timeout is the idle time after which f expires.
func (t *Table) timeout(f *Flow) int64 {
	timeout := t.cfg.UDPTimeout
	switch {
	case f.Closing:
		timeout = t.cfg.DoneTimeout
	case f.Key.Proto == 6:
		timeout = t.cfg.TCPTimeout
	}
	if !f.Established() {
		timeout = min(timeout, t.cfg.NewTimeout)
	}
	return int64(timeout)
}

// Sweep expires flows idle for longer than their timeout at packet time now.
func (t *Table) Sweep(now int64) {
	t.lastSweep = now
	for i := range t.n {
		if f := t.at(i); f.live && now-f.Last > t.timeout(f) {
			t.drop(i)
		}
	}
	t.Stats.Active = t.index.n
}

// evict ends one flow to make room: of the evictWindow entries from the
// hand on, the one that would expire first (a half-open flow before an
// established one idle for less than its timeout), flows mid-way through
// gathering a ClientHello or request head only when the whole window is
// gathering. The hand moves on by one entry, so every entry is looked at
// in turn and a flow created in an evicted entry has aged a full turn
// before it is a candidate again.
func (t *Table) evict(now int64) bool {
	n := int(t.n)
	if n == 0 {
		return false
	}
	best, bestGathering := int32(-1), false
	var bestDeadline int64
	for j := 0; j < evictWindow && j < n; j++ {
		i := t.hand + j
		if i >= n {
			i -= n
		}
		f := t.at(int32(i))
		if !f.live {
			continue
		}
		g, deadline := f.Gathering(), f.Last+t.timeout(f)
		if best < 0 || (bestGathering && !g) || (g == bestGathering && deadline < bestDeadline) {
			best, bestGathering, bestDeadline = int32(i), g, deadline
		}
	}
	if t.hand++; t.hand >= n {
		t.hand = 0
	}
	if best < 0 {
		return false
	}
	t.evicting = true
	t.drop(best)
	t.evicting = false
	t.Stats.Evicted++
	return true
}

// Evicting reports, to OnExpire, that the flow ends to make room for
// another, not because it timed out or the input ended.
func (t *Table) Evicting() bool { return t.evicting }

// at returns entry i.
func (t *Table) at(i int32) *Flow { return &t.chunks[i>>chunkShift][i&(chunkLen-1)] }

func (t *Table) drop(i int32) {
	f := t.at(i)
	if t.OnExpire != nil {
		t.OnExpire(f)
	}
	t.index.del(&f.Key, i)
	f.live = false
	// Large stream buffers are released, small ones kept for reuse.
	for d := range f.Buf {
		if cap(f.Buf[d]) > 4096 {
			f.Buf[d] = nil
		}
	}
	t.free = append(t.free, i)
	t.Stats.Expired++
}

// Flush expires every flow (end of input).
func (t *Table) Flush() {
	for i := range t.n {
		if t.at(i).live {
			t.drop(i)
		}
	}
	t.Stats.Active = t.index.n
}

// Len returns the number of live flows.
func (t *Table) Len() int { return t.index.n }

// Get returns the live flow of key k, or nil. Unlike Lookup it neither
// creates nor sweeps: it is safe to call from OnExpire.
func (t *Table) Get(k Key) *Flow {
	if i := t.index.get(&k, t.chunks); i >= 0 {
		return t.at(i)
	}
	return nil
}
