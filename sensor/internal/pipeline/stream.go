package pipeline

import (
	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
)

// What a stream-start gatherer collects (flow.Gather is the flow
// package's; its purpose is the worker's).
const (
	gatherUnknown uint8 = iota // data arrived before the stream's first bytes: not known yet
	gatherHello
	gatherHTTP
)

// tcp looks at the payload of a TCP segment.
func (w *worker) tcp(f *flow.Flow, dir int) {
	p := &w.pkt
	payload := p.Payload
	if extract.IsDNSPort(p.SrcPort) || extract.IsDNSPort(p.DstPort) {
		w.dnsTCP(f, dir)
		return
	}
	seq := p.Seq
	if p.TCPFlags&decode.FlagSYN != 0 {
		seq++ // TCP Fast Open data follows the SYN's sequence number
	}
	if f == nil {
		// No flow state (table full): read what this segment holds.
		w.streamStart(nil, dir, seq, payload)
		return
	}
	if f.G[dir] != nil {
		w.gatherMore(f, dir, seq, payload)
		return
	}
	end := seq + uint32(len(payload))
	if f.HaveSeq[dir] {
		if int32(end-f.NextSeq[dir]) <= 0 {
			return // retransmission: the bytes were looked at already
		}
		switch d := int32(seq - f.NextSeq[dir]); {
		case d < 0:
			// Overlap with bytes already looked at: only the new ones.
			payload, seq = payload[-d:], f.NextSeq[dir]
		case d > 0 && f.Inspect[dir] == inspectSegments && f.SynSeen[dir] && int(d) < w.cfg.HelloMax:
			// The first data of this direction comes after a hole:
			// out of order. Gather from where the stream starts.
			if w.gatherOpen(f, dir, f.NextSeq[dir], gatherUnknown) {
				w.gatherMore(f, dir, seq, payload)
				return
			}
		}
	}
	f.NextSeq[dir], f.HaveSeq[dir] = end, true
	if f.Inspect[dir] == 0 {
		return
	}
	if f.Kind != kindHTTP {
		f.Inspect[dir]--
	}
	w.streamStart(f, dir, seq, payload)
}

// streamStart runs the stream extractors over a segment that starts a
// message. Up to 4 messages in one segment (pipelined HTTP requests).
func (w *worker) streamStart(f *flow.Flow, dir int, seq uint32, payload []byte) {
	for n := 0; n < 4 && len(payload) > 0; n++ {
		used := 0
		for _, x := range streamExtractors {
			if x.match(payload) {
				used = x.handle(w, f, dir, seq, payload)
				break
			}
		}
		if used <= 0 {
			return
		}
		payload, seq = payload[used:], seq+uint32(used)
	}
}

// helloStart reads a ClientHello at the start of a segment. A hello
// that does not fit (post-quantum key shares make browsers' ~1.8 kB) is
// gathered from the segments that follow, in whatever order they come.
func (w *worker) helloStart(f *flow.Flow, dir int, seq uint32, payload []byte) int {
	err := w.clientHello(payload)
	if err != extract.ErrIncomplete {
		return 0
	}
	if f == nil || !w.gatherOpen(f, dir, seq, gatherHello) {
		w.c.HelloIncomplete++
		w.c.UnseenTLS[UnseenNoState]++
		return 0
	}
	w.gatherMore(f, dir, seq, payload)
	return 0
}

// httpStart reads one request head and keeps the flow under inspection:
// every request on a keep-alive connection is a contact. A head that does
// not end in this segment is gathered from the segments that follow.
func (w *worker) httpStart(f *flow.Flow, dir int, seq uint32, payload []byte) int {
	if f != nil {
		f.Kind = kindHTTP
		if f.Inspect[dir] > 0 {
			f.Inspect[dir]--
		}
		if f.Inspect[dir] == 0 && f.Packets[dir] < maxHTTPHeads {
			f.Inspect[dir] = 1
		}
	}
	w.http.Reset()
	if extract.ParseHTTPRequest(payload, &w.http) == nil && !w.http.Complete && f != nil && len(payload) < httpHeadBuffer {
		if w.gatherOpen(f, dir, seq, gatherHTTP) {
			w.gatherMore(f, dir, seq, payload)
			return 0
		}
	}
	return w.httpRequest(payload)
}

// gatherOpen gives the flow a gatherer for direction dir, starting at
// sequence number base. Gatherers in use are bounded per worker, in
// number and memory: when either is spent, the oldest gather is ended
// (counted incomplete) to make room, so that hellos cut short by a flood
// cannot hold every slot until their flows expire.
func (w *worker) gatherOpen(f *flow.Flow, dir int, base uint32, purpose uint8) bool {
	for w.gatherBytes >= maxGatherBytes || w.gathers.Len() >= w.gatherCap {
		if !w.gatherReclaim() {
			w.c.GatherRefused++
			return false
		}
	}
	var g *flow.Gather
	if n := len(w.gatherPool); n > 0 {
		g, w.gatherPool = w.gatherPool[n-1], w.gatherPool[:n-1]
	} else {
		g = new(flow.Gather)
	}
	g.Reset(base)
	g.Owner, g.Dir, g.Start = f.Key, uint8(dir), w.now
	w.gathers.PushBack(g)
	w.gatherBytes += g.Buffered()
	f.G[dir] = g
	f.GatherFor[dir] = purpose
	return true
}

// gatherClose releases the gatherer of direction dir.
func (w *worker) gatherClose(f *flow.Flow, dir int) {
	g := f.G[dir]
	if g == nil {
		return
	}
	w.gathers.Remove(g)
	w.gatherBytes -= g.Buffered()
	f.G[dir] = nil
	// Hellos are few per flow: give large buffers back, pool the rest.
	if g.Buffered() > 4096 {
		g.Release()
	}
	if len(w.gatherPool) < 64 {
		w.gatherPool = append(w.gatherPool, g)
	}
}

// gatherReclaim ends the oldest gather to make room for a new one. It
// reports false when there is none.
func (w *worker) gatherReclaim() bool {
	g := w.gathers.Oldest()
	if g == nil {
		return false
	}
	w.c.GatherReclaimed++
	w.gatherEnd(g, UnseenNoState)
	return true
}

// gatherExpire ends the gathers that did not complete within
// gatherTimeout of packet time: a ClientHello's or a request head's
// segments come within a round trip or two, so one still waiting is cut
// short, and its slot is better given to another.
func (w *worker) gatherExpire(now int64) {
	for g := w.gathers.Oldest(); g != nil && now-g.Start > int64(gatherTimeout); g = w.gathers.Oldest() {
		w.c.GatherTimeouts++
		w.gatherEnd(g, UnseenGap)
	}
}

// gatherEnd fails gatherer g for reason why, whichever flow holds it (not
// necessarily the packet's: events take their endpoints from the flow).
func (w *worker) gatherEnd(g *flow.Gather, why Unseen) {
	f := w.flows.Get(g.Owner)
	dir := int(g.Dir)
	if f == nil || f.G[dir] != g {
		// Not held by its flow any more: only the bookkeeping is left.
		w.gathers.Remove(g)
		w.gatherBytes -= g.Buffered()
		return
	}
	savedFlow, saved, savedNow := w.curFlow, w.pkt, w.now
	w.curFlow = f
	if f.GatherFor[dir] == gatherHTTP {
		w.pkt = decode.Packet{Proto: f.Key.Proto}
		w.pkt.Src, w.pkt.Dst, w.pkt.SrcPort, w.pkt.DstPort = f.Endpoints(dir)
		w.now = f.Last
	}
	w.gatherFail(f, dir, why)
	w.curFlow, w.pkt, w.now = savedFlow, saved, savedNow
}

// gatherMore adds a segment to the flow's gatherer and reads what the
// contiguous bytes now hold.
func (w *worker) gatherMore(f *flow.Flow, dir int, seq uint32, payload []byte) {
	g := f.G[dir]
	if end := seq + uint32(len(payload)); !f.HaveSeq[dir] || int32(end-f.NextSeq[dir]) > 0 {
		f.NextSeq[dir], f.HaveSeq[dir] = end, true
	}
	limit := w.cfg.HelloMax
	if f.GatherFor[dir] == gatherHTTP {
		limit = httpHeadBuffer
	}
	before := g.Buffered()
	grew, err := g.Add(seq, payload, limit)
	w.gatherBytes += g.Buffered() - before
	switch err {
	case nil:
	case flow.ErrGatherFull:
		w.gatherFail(f, dir, UnseenCap)
		return
	default:
		w.gatherFail(f, dir, UnseenGap)
		return
	}
	if !grew {
		return
	}
	b := g.Bytes()
	if f.GatherFor[dir] == gatherUnknown {
		switch {
		case extract.IsClientHelloStart(b) && len(b) >= 6:
			f.GatherFor[dir] = gatherHello
		case extract.IsRequestStart(b):
			f.GatherFor[dir] = gatherHTTP
			f.Kind = kindHTTP
		case len(b) >= 16:
			// Neither: the stream is something else. Let go.
			w.gatherClose(f, dir)
			return
		default:
			return
		}
		f.Inspect[dir]--
	}
	switch f.GatherFor[dir] {
	case gatherHello:
		switch err := w.clientHello(b); err {
		case extract.ErrIncomplete:
			return
		case nil:
			w.c.HelloReassembled++
		}
	case gatherHTTP:
		w.http.Reset()
		if extract.ParseHTTPRequest(b, &w.http) == nil && !w.http.Complete {
			return
		}
		w.httpRequest(b)
	}
	w.gatherClose(f, dir)
}

// gatherFail ends gathering that cannot complete. A request head is
// reported as far as it got; a hello's name is unseen.
func (w *worker) gatherFail(f *flow.Flow, dir int, why Unseen) {
	switch f.GatherFor[dir] {
	case gatherHello:
		w.c.HelloIncomplete++
		w.c.UnseenTLS[why]++
		switch why {
		case UnseenCap:
			w.c.HelloTooBig++
		case UnseenGap:
			w.c.HelloGaps++
		}
	case gatherUnknown:
		// Data came, its start never did: what it was is not known.
		w.c.StreamStartLost++
	case gatherHTTP:
		if b := f.G[dir].Bytes(); len(b) > 0 {
			w.httpRequest(b)
		}
	}
	w.gatherClose(f, dir)
}

// flowEnded finishes what a flow had in progress when it expires or is
// evicted. The worker's packet is the packet being processed, not this
// flow's: events take their endpoints from the flow instead.
func (w *worker) flowEnded(f *flow.Flow) {
	savedFlow := w.curFlow
	w.curFlow = f
	defer func() { w.curFlow = savedFlow }()
	if f.Aux != nil {
		w.quicEnded(f)
	}
	if f.Gathering() {
		// Evicted mid-way: the table had no room (no_state); expired:
		// the rest never came.
		why, evicted := UnseenGap, w.flows.Evicting()
		if evicted {
			why = UnseenNoState
		}
		for dir := range f.G {
			if g := f.G[dir]; g != nil {
				if evicted {
					w.c.GatherEvicted++
				}
				w.gatherEnd(g, why)
			}
		}
	}
	w.flowDone(f)
}
