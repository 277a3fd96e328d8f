package flow

import "errors"

// Errors returned by Gather.Add.
var (
	ErrGatherFull  = errors.New("flow: stream data beyond the gather cap")
	ErrGatherHoles = errors.New("flow: too many out-of-order pieces")
)

// maxPieces bounds the out-of-order pieces a Gather holds beyond its
// contiguous prefix: a ClientHello or a request head is a few segments, so
// more pieces than this is a hostile or broken stream, not worth memory.
const maxPieces = 8

type piece struct{ start, end int32 }

// Gather collects the first bytes of one direction of a TCP stream — a
// ClientHello, a request head — from segments that may arrive out of
// order, twice, or overlapping, into one buffer capped by the caller.
// Bytes are placed at their offset from Base; the first copy of a byte
// wins (as the receiving host would keep it, and as Suricata's default
// policy does), later copies are ignored. The zero value is empty.
type Gather struct {
	Base   uint32 // sequence number of buffer offset 0
	buf    []byte // holds every byte up to the highest end seen; holes are zero
	contig int    // bytes [0, contig) are present
	pieces [maxPieces]piece
	n      int // pieces in use, sorted by start, all beyond contig

	// Who holds it, for its owner's bookkeeping (GatherList): the flow,
	// the direction, and when gathering started (packet time).
	Owner Key
	Dir   uint8
	Start int64

	prev, next *Gather
	inList     bool
}

// Reset empties g for a stream starting at sequence number base, keeping
// its buffer. g must not be in a GatherList.
func (g *Gather) Reset(base uint32) {
	*g = Gather{Base: base, buf: g.buf[:0]}
}

// Release drops the buffer, giving its memory back. g must not be in a
// GatherList.
func (g *Gather) Release() { *g = Gather{} }

// Bytes returns the contiguous bytes gathered from Base; it aliases the
// buffer until the next Add or Reset.
func (g *Gather) Bytes() []byte { return g.buf[:g.contig:g.contig] }

// Len is the number of contiguous bytes.
func (g *Gather) Len() int { return g.contig }

// Buffered is the memory held, for accounting.
func (g *Gather) Buffered() int { return cap(g.buf) }

// Add places a segment's data at sequence number seq. It reports whether
// the contiguous prefix grew. Data before Base or already present is
// ignored; data beyond max bytes from Base gives ErrGatherFull, a ninth
// out-of-order piece ErrGatherHoles (g is unchanged on error).
func (g *Gather) Add(seq uint32, data []byte, max int) (grew bool, err error) {
	off := int64(int32(seq - g.Base))
	end := off + int64(len(data))
	if off < 0 {
		if end <= 0 {
			return false, nil
		}
		data = data[-off:]
		off = 0
	}
	if end <= int64(g.contig) || len(data) == 0 {
		return false, nil // all retransmitted
	}
	if end > int64(max) {
		return false, ErrGatherFull
	}
	s, e := int32(off), int32(end)
	if s > int32(g.contig) && !g.coveredOrRoom(s, e) {
		return false, ErrGatherHoles
	}
	if int(e) > len(g.buf) {
		if int(e) > cap(g.buf) {
			nb := make([]byte, len(g.buf), max2(int(e), 2*cap(g.buf)))
			copy(nb, g.buf)
			g.buf = nb
		}
		g.buf = g.buf[:e]
	}
	// Copy only the bytes not already present: first copy wins.
	g.fill(s, e, data, int32(off))
	if s <= int32(g.contig) {
		g.contig = int(e)
		// Swallow pieces the prefix now reaches.
		i := 0
		for ; i < g.n && int(g.pieces[i].start) <= g.contig; i++ {
			if int(g.pieces[i].end) > g.contig {
				g.contig = int(g.pieces[i].end)
			}
		}
		copy(g.pieces[:], g.pieces[i:g.n])
		g.n -= i
		return true, nil
	}
	g.insert(s, e)
	return false, nil
}

// fill copies data (which starts at offset base) into [s, e), skipping
// ranges already present.
func (g *Gather) fill(s, e int32, data []byte, base int32) {
	put := func(a, b int32) {
		if a < b {
			copy(g.buf[a:b], data[a-base:b-base])
		}
	}
	cur := s
	if cur < int32(g.contig) {
		cur = int32(g.contig)
	}
	for i := 0; i < g.n && cur < e; i++ {
		p := g.pieces[i]
		if p.end <= cur {
			continue
		}
		if p.start >= e {
			break
		}
		put(cur, min(p.start, e))
		cur = p.end
	}
	if cur < e {
		put(cur, e)
	}
}

// coveredOrRoom reports whether [s, e) can be recorded: it merges with
// existing pieces or there is a free slot.
func (g *Gather) coveredOrRoom(s, e int32) bool {
	if g.n < maxPieces {
		return true
	}
	for i := 0; i < g.n; i++ {
		if s <= g.pieces[i].end && e >= g.pieces[i].start {
			return true
		}
	}
	return false
}

// insert records [s, e) among the pieces, merging overlapping and
// adjacent ones.
func (g *Gather) insert(s, e int32) {
	var out [maxPieces + 1]piece
	n, placed := 0, false
	for i := 0; i < g.n; i++ {
		p := g.pieces[i]
		switch {
		case p.end < s:
			out[n] = p
			n++
		case p.start > e:
			if !placed {
				out[n] = piece{s, e}
				n++
				placed = true
			}
			out[n] = p
			n++
		default:
			s, e = min(s, p.start), max(e, p.end)
		}
	}
	if !placed {
		out[n] = piece{s, e}
		n++
	}
	copy(g.pieces[:], out[:n])
	g.n = n
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// GatherList keeps the gatherers in use in the order they were added
// (oldest first), so that the oldest can be found at once to time it out
// or reclaim it. The zero value is empty.
type GatherList struct {
	head, tail *Gather
	n          int
}

// PushBack adds g, which must not be in a list, as the newest.
func (l *GatherList) PushBack(g *Gather) {
	g.prev, g.next, g.inList = l.tail, nil, true
	if l.tail != nil {
		l.tail.next = g
	} else {
		l.head = g
	}
	l.tail = g
	l.n++
}

// Remove takes g out of the list; nothing happens when it is not in one.
func (l *GatherList) Remove(g *Gather) {
	if !g.inList {
		return
	}
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		l.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		l.tail = g.prev
	}
	g.prev, g.next, g.inList = nil, nil, false
	l.n--
}

// Oldest returns the gatherer added first, or nil.
func (l *GatherList) Oldest() *Gather { return l.head }

// Len is the number of gatherers in the list.
func (l *GatherList) Len() int { return l.n }
