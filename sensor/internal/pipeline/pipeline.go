// Package pipeline runs the sensor: one reader goroutine hands packets in
// batches to N workers sharded by a symmetric flow hash; each worker
// decodes, tracks flows, extracts and matches with state of its own; the
// rare observations worth keeping cross into one output goroutine that
// feeds the inventory and the alert sinks.
package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phonehome-sensor/phonehome/geo"
	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Config wires a pipeline.
type Config struct {
	Workers int
	// Inspect emits every observation (matched or not) as an event; when
	// false only alerts are emitted.
	Inspect bool
	// Observations emits every observation as an event besides the
	// alerts (an output takes observations, sampled or not).
	Observations bool
	Flow         flow.Config
	// HelloMax bounds the bytes gathered for one ClientHello, over TCP
	// segments or QUIC CRYPTO frames (0: DefaultHelloMax).
	HelloMax int
	// ECH holds the known ECH public names, shared by the workers (nil:
	// a new set with the built-in names).
	ECH *ECHNames
	// Learned remembers the addresses matched names resolved to, shared
	// by the workers (nil: a new table with DefaultLearnedConfig).
	Learned *Learned
	// Rules returns the rule set in force; it is called once per
	// observation, so a reload takes effect at the next one.
	Rules func() *rules.Set
	// Geo returns the GeoIP databases in force (nil: no look-ups); it is
	// called once per flow whose rules need a country or an ASN.
	Geo       func() *geo.DB
	Inventory *inventory.Inventory
	// Emit receives events from the single output goroutine.
	Emit     func(*alert.Event)
	Observer alert.Observer
	// Lossy makes the reader drop packets when workers fall behind (live
	// capture); files are read without loss.
	Lossy bool
	Log   *slog.Logger
	// Live, when set, is kept up to date while the pipeline runs.
	Live *Live
}

// everyObservation tells whether an event is built for every
// observation, matched or not.
func (c *Config) everyObservation() bool { return c.Inspect || c.Observations }

// Counters are the extraction counters of one worker.
type Counters struct {
	DNSMessages       uint64
	DNSMalformed      uint64 // payload on a DNS port that did not parse
	DNSPartial        uint64 // messages malformed after the question
	DNSTCPOversize    uint64 // DNS over TCP messages larger than the stream buffer
	DNSTCPGaps        uint64 // DNS over TCP streams resynchronised after a gap
	ClientHellos      uint64
	HelloIncomplete   uint64 // ClientHellos never completed (gap, too big, flow ended)
	HelloReassembled  uint64 // ClientHellos gathered from several segments
	HelloGaps         uint64 // gathering stopped by a missing or out-of-order segment
	HelloTooBig       uint64 // gathering stopped by the buffer cap
	HelloMalformed    uint64
	HTTPRequests      uint64
	QUICInitials      uint64 // client datagrams starting with a QUIC Initial (or gQUIC CHLO)
	QUICHellos        uint64 // ClientHellos read from QUIC Initials
	QUICUndecryptable uint64 // datagrams whose Initials could not be decrypted
	QUICMalformed     uint64 // bad frames or ClientHellos inside decrypted Initials
	ECHOuter          uint64 // hellos whose server_name is a known ECH public name: the real name is hidden
	ECHUnverified     uint64 // hellos with an ECH extension and another outer name: GREASE (the name is real) or ECH with an unlearned public name
	GeoLookups        uint64 // country/ASN look-ups (one per flow at most, when rules need them)
	DHCPNames         uint64 // host names read from DHCP messages
	FlowContacts      uint64 // flows matched by their destination alone (address, port, learned name)
	GatherRefused     uint64 // hellos or heads not gathered: the worker's gathering memory was spent
	GatherTimeouts    uint64 // gathers ended incomplete after gatherTimeout of packet time
	GatherReclaimed   uint64 // gathers ended incomplete, the oldest, to make room for a new one
	GatherEvicted     uint64 // gathers ended incomplete because their flow was evicted (table full)
	StreamStartLost   uint64 // streams whose data came after a hole that never filled: their start is unknown
	UnseenTLS         UnseenCounts
	UnseenQUIC        UnseenCounts
	Observations      uint64
	Hits              uint64
}

func (c *Counters) add(o *Counters) {
	c.DNSMessages += o.DNSMessages
	c.DNSMalformed += o.DNSMalformed
	c.DNSPartial += o.DNSPartial
	c.DNSTCPOversize += o.DNSTCPOversize
	c.DNSTCPGaps += o.DNSTCPGaps
	c.ClientHellos += o.ClientHellos
	c.HelloIncomplete += o.HelloIncomplete
	c.HelloReassembled += o.HelloReassembled
	c.HelloGaps += o.HelloGaps
	c.HelloTooBig += o.HelloTooBig
	c.HelloMalformed += o.HelloMalformed
	c.HTTPRequests += o.HTTPRequests
	c.QUICInitials += o.QUICInitials
	c.QUICHellos += o.QUICHellos
	c.QUICUndecryptable += o.QUICUndecryptable
	c.QUICMalformed += o.QUICMalformed
	c.ECHOuter += o.ECHOuter
	c.ECHUnverified += o.ECHUnverified
	c.GeoLookups += o.GeoLookups
	c.DHCPNames += o.DHCPNames
	c.FlowContacts += o.FlowContacts
	c.GatherRefused += o.GatherRefused
	c.GatherTimeouts += o.GatherTimeouts
	c.GatherReclaimed += o.GatherReclaimed
	c.GatherEvicted += o.GatherEvicted
	c.StreamStartLost += o.StreamStartLost
	c.UnseenTLS.add(&o.UnseenTLS)
	c.UnseenQUIC.add(&o.UnseenQUIC)
	c.Observations += o.Observations
	c.Hits += o.Hits
}

// Stats summarises a run.
type Stats struct {
	Packets    uint64
	Bytes      uint64
	QueueDrops uint64
	Decode     decode.Stats
	Flows      flow.Stats
	Counters
	Events uint64
	Alerts uint64
	// Learned-address table at the end of the run.
	LearnedLen                                   int
	LearnedAdded, LearnedEvicted, LearnedExpired uint64
	Warnings                                     []string            // truncated or damaged captures
	Store                                        string              // what was written to the inventory store (set by the caller)
	Outputs                                      []alert.OutputStats // what each output did with the events (set by the caller)
	Started                                      time.Time
	Elapsed                                      time.Duration
	First                                        time.Time // packet time of the first and last packet
	Last                                         time.Time
}

const (
	batchPackets = 256
	batchBytes   = 512 << 10
	queueDepth   = 8
)

// pktRef locates a packet in its batch's data.
type pktRef = capture.Record

// A batch is what a worker takes at a time: packets copied into data
// (live sources, pcapng), or records of a chunk that a classic pcap file
// was read into, which the batches of all workers share (shared set).
type batch struct {
	data   []byte
	pkts   []pktRef
	shared *chunk
}

// chunk is a piece of a capture file read in place (capture.ReadRecords,
// 128 KiB at a time into a buffer that can hold the largest records):
// no packet is copied on its way to the workers. It goes back to its pool
// when the last batch referring to it is done.
type chunk struct {
	data []byte
	refs atomic.Int32
	pool chan *chunk
}

// release gives b's chunk back once every batch sharing it is done.
func (b *batch) release() {
	if c := b.shared; c != nil {
		b.shared, b.data = nil, nil
		if c.refs.Add(-1) == 0 {
			c.pool <- c
		}
	}
}

func (b *batch) full(n int) bool {
	return len(b.pkts) >= batchPackets || len(b.data)+n > batchBytes
}

// Run reads every source in order until the end or until ctx is done, and
// returns the run's statistics. Errors from a source (a truncated or
// damaged file) become warnings: what came before is processed.
func Run(ctx context.Context, sources []capture.Source, cfg Config) (*Stats, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st := &Stats{Started: time.Now()}
	n := cfg.Workers
	free := make(chan *batch, n*(queueDepth+2))
	for i := 0; i < n*(queueDepth+2); i++ {
		// Data is allocated when a batch is first filled by copying:
		// files read in place never need it.
		free <- &batch{pkts: make([]pktRef, 0, batchPackets)}
	}
	queues := make([]chan *batch, n)
	for i := range queues {
		queues[i] = make(chan *batch, queueDepth)
	}
	stg := startStages(&cfg, queues, func(int) chan<- *batch { return free })
	rd := &inPlaceReader{n: n, free: free, queues: queues, chunks: make(chan *chunk, n*(queueDepth+2)), live: cfg.Live}

	var drops atomic.Uint64
	cur := make([]*batch, n)
	send := func(i int) {
		if cur[i] == nil || len(cur[i].pkts) == 0 {
			return
		}
		queues[i] <- cur[i]
		cur[i] = nil
	}
	// endedEarly records a source that did not end cleanly (io.EOF): a
	// truncated or damaged file is a warning, what came before it counts.
	endedEarly := func(src capture.Source, err error) {
		if err == nil || errors.Is(err, io.EOF) {
			return
		}
		msg := err.Error()
		if errors.Is(err, capture.ErrTruncated) {
			msg += ": processed up to the cut"
		}
		st.Warnings = append(st.Warnings, msg)
		cfg.Log.Warn("capture ended early", "source", src.Name(), "err", err)
	}
	var first, last int64
readLoop:
	for _, src := range sources {
		if rr := capture.InPlace(src); rr != nil && !cfg.Lossy {
			for i := range cur {
				send(i) // what came before goes first
			}
			err := rd.run(ctx, rr, st, &first, &last)
			if ctx.Err() != nil {
				break readLoop
			}
			endedEarly(src, err)
			continue
		}
		for {
			if ctx.Err() != nil {
				break readLoop
			}
			data, ci, lt, err := src.ReadPacket()
			if err != nil {
				endedEarly(src, err)
				break
			}
			st.Packets++
			st.Bytes += uint64(ci.Length)
			if cfg.Live != nil {
				cfg.Live.packets.Add(1)
				cfg.Live.bytes.Add(uint64(ci.Length))
			}
			ts := ci.Timestamp.UnixNano()
			if first == 0 {
				first = ts
			}
			if ts > last {
				last = ts
			}
			i := 0
			if n > 1 {
				i = int(decode.FlowHash(lt, data) % uint32(n))
			}
			b := cur[i]
			if b != nil && b.full(len(data)) {
				send(i)
				b = nil
			}
			if b == nil {
				if cfg.Lossy {
					select {
					case b = <-free:
					default:
						drops.Add(1)
						if cfg.Live != nil {
							cfg.Live.queueDrops.Add(1)
						}
						continue
					}
				} else {
					b = <-free
				}
				if cap(b.data) == 0 {
					b.data = make([]byte, 0, batchBytes)
				}
				cur[i] = b
			}
			off := len(b.data)
			b.data = append(b.data, data...)
			b.pkts = append(b.pkts, pktRef{Off: uint32(off), Len: uint32(len(data)), WireLen: uint32(ci.Length), LinkType: lt, TS: ts})
			if len(b.pkts) >= batchPackets {
				// Full: hand it over now, not when the next packet
				// comes (a slow source must not hold packets back).
				send(i)
			}
		}
	}
	for i := range cur {
		send(i)
	}
	for _, q := range queues {
		close(q)
	}
	stg.stop(st, drops.Load(), first, last)
	return st, ctx.Err()
}

// inPlaceReader hands the workers the records of classic pcap files read
// in place: the file is read straight into chunks, and each worker gets,
// per chunk, a batch of the records of its flows. Reading a file this way
// costs its read and the record headers; copying every packet into a
// batch cost about a third of the reader's time, and the reader bounds
// the pipeline once workers are fast.
type inPlaceReader struct {
	n      int
	free   chan *batch
	queues []chan *batch
	chunks chan *chunk
	made   int
	recs   []capture.Record
	cur    []*batch
	live   *Live
}

// chunk returns a free chunk, making one while fewer than the pool's size
// exist.
func (r *inPlaceReader) chunk() *chunk {
	select {
	case c := <-r.chunks:
		return c
	default:
	}
	if r.made < cap(r.chunks) {
		r.made++
		return &chunk{data: make([]byte, 0, capture.MinRecordBuf), pool: r.chunks}
	}
	return <-r.chunks
}

// run reads rr to its end (io.EOF) or an error, or until ctx is done.
func (r *inPlaceReader) run(ctx context.Context, rr capture.RecordReader, st *Stats, first, last *int64) error {
	if r.cur == nil {
		r.cur = make([]*batch, r.n)
	}
	for ctx.Err() == nil {
		c := r.chunk()
		var err error
		c.data, r.recs, err = rr.ReadRecords(c.data, r.recs[:0])
		if len(r.recs) == 0 {
			r.chunks <- c
		} else {
			r.dispatch(c, st, first, last)
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// dispatch counts c's records and hands them to the workers.
func (r *inPlaceReader) dispatch(c *chunk, st *Stats, first, last *int64) {
	var bytes uint64
	for i := range r.recs {
		bytes += uint64(r.recs[i].WireLen)
		*last = max(*last, r.recs[i].TS)
	}
	if *first == 0 {
		*first = r.recs[0].TS
	}
	st.Packets += uint64(len(r.recs))
	st.Bytes += bytes
	if r.live != nil {
		r.live.packets.Add(uint64(len(r.recs)))
		r.live.bytes.Add(bytes)
	}
	if r.n == 1 {
		b := <-r.free
		b.shared, b.data = c, c.data
		b.pkts, r.recs = r.recs, b.pkts[:0]
		c.refs.Store(1)
		r.queues[0] <- b
		return
	}
	for _, rec := range r.recs {
		i := int(decode.FlowHash(rec.LinkType, c.data[rec.Off:rec.Off+rec.Len]) % uint32(r.n))
		if r.cur[i] == nil {
			r.cur[i] = <-r.free
			r.cur[i].shared, r.cur[i].data = c, c.data
		}
		r.cur[i].pkts = append(r.cur[i].pkts, rec)
	}
	k := int32(0)
	for _, b := range r.cur {
		if b != nil {
			k++
		}
	}
	// Every batch holds its reference before any worker can let go.
	c.refs.Store(k)
	for i, b := range r.cur {
		if b != nil {
			r.queues[i] <- b
			r.cur[i] = nil
		}
	}
}

// output turns observations into events, alerts and inventory entries.
type output struct {
	cfg    *Config
	events uint64
	alerts uint64
}

func (o *output) handle(ob *observation) {
	ev := ob.event
	if d := ob.dhcp; d != nil {
		if o.cfg.Inventory != nil {
			o.cfg.Inventory.LearnHostname(d.ip, d.mac, d.name)
		}
		return
	}
	if ob.flow != nil {
		if o.cfg.Inventory != nil {
			o.cfg.Inventory.AddFlow(ob.flow.client, ob.flow.categories, ob.flow.traffic)
		}
		if ev != nil && o.cfg.everyObservation() {
			o.event()
			o.cfg.Emit(ev)
		}
		return
	}
	if o.cfg.everyObservation() {
		o.event()
		o.cfg.Emit(ev)
	}
	if o.cfg.Inventory == nil {
		return
	}
	for i, h := range ob.hits {
		c := inventory.Contact{
			Time:        ev.Timestamp,
			Client:      ob.client,
			MAC:         ob.clientMAC,
			Destination: ob.server,
			Protocol:    ev.Network.Protocol,
			Name:        ob.matched[i].Atomic,
			Hit:         h,
		}
		alerted, overdue := o.cfg.Inventory.ObserveDeadline(c)
		if !alerted || o.cfg.Inspect {
			continue
		}
		a := *ev
		a.Event.Kind = alert.KindAlert
		sev := h.Rule.Severity
		if overdue && sev < rules.SeverityCritical {
			// Still phoning home after its removal deadline: worse than
			// the same contact before it.
			sev++
		}
		a.Event.Severity = alert.SeverityScore(sev)
		a.Event.Reason = h.Reason()
		a.Rule = ruleObject(h)
		a.Threat = &alert.Threat{Enrichments: []alert.Enrichment{enrichment(h, ob.matched[i])}}
		ph := alert.PhonehomeExt{Category: []string{string(h.Rule.Category)}}
		if o.cfg.Inventory.Internal(ob.client) {
			ph.Host = ob.client.String()
		}
		if ev.Phonehome != nil {
			ph.Partial = ev.Phonehome.Partial
		}
		if overdue {
			ph.Status = "still-phoning-home"
			if d := o.cfg.Inventory.Deadline(ob.client); !d.IsZero() {
				ph.Deadline = d.Format("2006-01-02")
			}
		}
		a.Phonehome = &ph
		o.alert()
		o.event()
		o.cfg.Emit(&a)
	}
}

// event and alert count what the output emitted, mirrored into Live
// for the metrics.
func (o *output) event() {
	o.events++
	if o.cfg.Live != nil {
		o.cfg.Live.events.Add(1)
	}
}

func (o *output) alert() {
	o.alerts++
	if o.cfg.Live != nil {
		o.cfg.Live.alerts.Add(1)
	}
}

func ruleObject(h rules.Hit) *alert.Rule {
	r := h.Rule
	out := &alert.Rule{ID: r.ID, Name: r.Name, Category: string(r.Category), Description: h.Reason()}
	if p := r.Profile; p != nil {
		out.Ruleset = p.ID
		out.Version = p.Version
		for _, s := range r.Sources {
			if src, ok := p.Sources[s]; ok && src.URL != "" {
				out.Reference = src.URL
				break
			}
		}
	}
	return out
}

func enrichment(h rules.Hit, m alert.Matched) alert.Enrichment {
	typ := "domain-name"
	switch h.Kind {
	case "cidr":
		typ = "ipv4-addr"
		if strings.Contains(m.Atomic, ":") {
			typ = "ipv6-addr"
		}
	case "port":
		typ = "port"
	}
	e := alert.Enrichment{
		Indicator: alert.Indicator{Type: typ, Description: h.Reason(), Confidence: h.Rule.Confidence},
		Matched:   m,
	}
	if p := h.Rule.Profile; p != nil {
		e.Indicator.Provider = p.ID
	}
	e.Matched.ID = h.Rule.ID
	e.Matched.Type = "indicator_match_rule"
	return e
}
