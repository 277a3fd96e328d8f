package pipeline

import (
	"net/netip"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// categoryBit maps a category to its bit in flow.Flow.Matched (bit 31:
// matched, category unknown).
var categoryBit = func() map[rules.Category]uint32 {
	m := map[rules.Category]uint32{}
	for i, c := range rules.Categories() {
		if i < 31 {
			m[c] = 1 << i
		}
	}
	return m
}()

const matchedOther = 1 << 31

func flowBits(hits []rules.Hit) uint32 {
	var b uint32
	for _, h := range hits {
		if bit, ok := categoryBit[h.Rule.Category]; ok {
			b |= bit
		} else {
			b |= matchedOther
		}
	}
	return b
}

func bitsCategories(b uint32) []rules.Category {
	var out []rules.Category
	for c, bit := range categoryBit {
		if b&bit != 0 {
			out = append(out, c)
		}
	}
	return out
}

// flowStart matches what a new flow's destination says by itself, once
// per flow: its address and port against the rules, and whether a matched
// name resolved to it (dns-learned). Names come later, from the flow's
// payload; these hits are what is known even when no name ever shows
// (cached DNS, IP-literal connections, ECH, DNS over HTTPS).
func (w *worker) flowStart(f *flow.Flow) {
	cli, srv, _, sport := f.Endpoints(flow.FromClient)
	set := w.cfg.Rules()
	w.hits = w.hits[:0]
	var matched []alert.Matched
	c := rules.Contact{Addr: srv, Port: sport, Proto: f.Key.Proto}
	c.Country, c.ASN = w.geoOf(f, srv)
	w.matchContact(set, &c, "", &matched, true)
	name, learned, ok := w.cfg.Learned.Lookup(srv, w.now)
	if ok {
		for _, h := range learned {
			w.hits = append(w.hits, rules.Hit{Rule: h.Rule, Kind: KindDNSLearned, Indicator: name})
			matched = append(matched, alert.Matched{Atomic: name, Field: "destination.domain"})
		}
	}
	if len(w.hits) == 0 {
		return
	}
	w.hits, matched = dedupHits(w.hits, matched)
	f.Matched |= flowBits(w.hits)
	ev := w.flowEvent(f)
	if ok {
		// The name the address was learned from, as a destination name.
		ev.Destination.Domain = name
	}
	w.c.FlowContacts++
	w.emit(ev, cli, netip.AddrPortFrom(srv, sport), matched)
}

// flowEvent is the event of a flow-level contact, with the endpoints of
// the flow (the packet at hand may be the server's).
func (w *worker) flowEvent(f *flow.Flow) *alert.Event {
	cli, srv, cport, sport := f.Endpoints(flow.FromClient)
	transport := "tcp"
	if f.Key.Proto == rules.ProtoUDP {
		transport = "udp"
	}
	ev := w.baseEvent("", transport)
	ev.Event.Dataset = "phonehome.flow"
	ev.Source = alert.Endpoint{IP: cli.String(), Port: cport}
	ev.Destination = alert.Endpoint{IP: srv.String(), Port: sport}
	if p := &w.pkt; p.HasMAC && p.Src == cli {
		ev.Source.MAC = formatMAC(p.SrcMAC)
	}
	if f.GeoDone {
		addGeo(&ev.Destination, f)
	}
	ev.Network.Type = "ipv4"
	if cli.Is6() {
		ev.Network.Type = "ipv6"
	}
	return ev
}

// flowSummary is what a matched flow carried, sent to the output stage
// when the flow ends.
type flowSummary struct {
	client      netip.Addr
	categories  []rules.Category
	traffic     inventory.Traffic
	first, last time.Time
}

// flowDone reports a matched flow's traffic when it ends: the inventory
// counts what each host sent to and received from vendor endpoints.
func (w *worker) flowDone(f *flow.Flow) {
	if f.Matched == 0 {
		return
	}
	cli, _, _, _ := f.Endpoints(flow.FromClient)
	s := &flowSummary{
		client:     cli,
		categories: bitsCategories(f.Matched),
		traffic: inventory.Traffic{
			BytesOut: f.Bytes[flow.FromClient], BytesIn: f.Bytes[flow.FromServer],
			PacketsOut: f.Packets[flow.FromClient], PacketsIn: f.Packets[flow.FromServer],
		},
		first: time.Unix(0, f.First).UTC(),
		last:  time.Unix(0, f.Last).UTC(),
	}
	var ev *alert.Event
	if w.cfg.everyObservation() {
		ev = w.flowEvent(f)
		ev.Event.Type = []string{"end"}
		ev.Timestamp = s.last
		ev.Event.Start, ev.Event.End = &s.first, &s.last
		ev.Source.Bytes, ev.Source.Packets = s.traffic.BytesOut, s.traffic.PacketsOut
		ev.Destination.Bytes, ev.Destination.Packets = s.traffic.BytesIn, s.traffic.PacketsIn
	}
	w.out <- &observation{event: ev, flow: s, client: cli}
}
