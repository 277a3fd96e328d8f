package pipeline

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/geo"
	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
)

// What a worker learned a flow carries (flow.Flow.Kind).
const (
	kindUnknown uint8 = iota
	kindHTTP
	kindDNS
	kindQUICUnseen // UDP: a client Initial no key opened, its unseen name counted; no QUIC state kept
)

const (
	// inspectSegments is how many payload segments per direction are
	// looked at for a ClientHello or request head before a flow is left
	// alone: enough for STARTTLS and CONNECT, cheap for bulk transfers.
	inspectSegments = 8
	// maxHTTPHeads bounds the request heads read on one HTTP flow.
	maxHTTPHeads = 256
	// dnsTCPBuffer bounds the stream buffer of one direction of a DNS over
	// TCP flow.
	dnsTCPBuffer = 16 << 10
	// DefaultHelloMax bounds the bytes gathered for one ClientHello (TCP
	// stream or QUIC CRYPTO) when Config.HelloMax is 0.
	DefaultHelloMax = 16 << 10
	// httpHeadBuffer bounds the bytes gathered for one request head.
	httpHeadBuffer = 8 << 10
	// maxGathers and maxGatherBytes bound the hellos and heads being
	// gathered at once by one worker, whatever the traffic.
	maxGathers     = 16384
	maxGatherBytes = 32 << 20
	// gatherTimeout is the packet time a hello or head may take to
	// complete: its segments come within a round trip or two.
	gatherTimeout = 10 * time.Second
	// gatherCheckEvery is the packet time between two looks for gathers
	// past gatherTimeout.
	gatherCheckEvery = time.Second
)

// observation is what crosses from a worker to the output stage: an event
// with its hits, and who the contact is about.
type observation struct {
	event     *alert.Event
	hits      []rules.Hit
	matched   []alert.Matched // parallel to hits: what matched
	flow      *flowSummary    // a matched flow that ended (event may be nil)
	dhcp      *dhcpName       // a host name seen in DHCP
	client    netip.Addr      // the host that made the contact
	clientMAC string
	server    netip.AddrPort
}

type worker struct {
	cfg   *Config
	out   chan<- *observation
	dec   *decode.Decoder
	flows *flow.Table
	pkt   decode.Packet
	now   int64
	c     Counters

	gatherPool  []*flow.Gather
	gathers     flow.GatherList // gatherers in use, oldest first
	gatherBytes int             // their buffers' memory
	gatherCap   int             // maxGathers (lowered by tests)
	gatherCheck int64           // packet time of the last look for gathers timed out

	quicScratch extract.QUICAssembler // for datagrams of flows without state
	quicKeys    *extract.QUICKeyCache // Initial keys of recent connections, by DCID
	quicPool    []*quicFlow
	quicCount   int // QUIC flows followed
	gquicNames  []byte
	curFlow     *flow.Flow // the flow of the packet at hand (or the one ending); nil without state
	ja4         [64]byte
	ua          []byte

	hello   extract.ClientHello
	scratch []byte
	http    extract.HTTPRequest
	msg     dns.Msg
	scan    extract.DNSScan
	name    []byte
	hits    []rules.Hit
}

func newWorker(cfg *Config, out chan<- *observation) *worker {
	if cfg.HelloMax <= 0 {
		cfg.HelloMax = DefaultHelloMax
	}
	if cfg.ECH == nil { // workers are made one after the other: no race
		cfg.ECH = NewECHNames(4096)
	}
	if cfg.Learned == nil {
		cfg.Learned = NewLearned(LearnedConfig{})
	}
	w := &worker{
		cfg:   cfg,
		out:   out,
		dec:   decode.New(),
		flows: flow.NewTable(cfg.Flow),
		name:  make([]byte, 0, 256),
		hits:  make([]rules.Hit, 0, 8),

		gatherCap: maxGathers,
	}
	w.flows.OnExpire = w.flowEnded
	return w
}

func (w *worker) batch(b *batch) {
	for _, r := range b.pkts {
		w.packet(r.LinkType, b.data[r.Off:r.Off+r.Len], r.TS)
	}
}

func (w *worker) finish() { w.flows.Flush() }

func (w *worker) packet(lt layers.LinkType, data []byte, ts int64) {
	p := &w.pkt
	if w.dec.DecodeAt(lt, data, ts, p) != nil {
		return
	}
	w.now = ts
	w.curFlow = nil
	if d := ts - w.gatherCheck; d >= int64(gatherCheckEvery) || d < 0 {
		w.gatherCheck = ts
		w.gatherExpire(ts)
	}
	k, srcIsA := flow.MakeKey(p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto)
	f, isNew := w.flows.Lookup(k, ts, true)
	w.curFlow = f
	dir := flow.FromClient
	if f != nil {
		if isNew {
			// The client is the SYN's sender; otherwise the first sender
			// seen, unless it sends from a well-known port to a high one.
			f.ClientIsA = srcIsA
			if p.Proto == decode.ProtoTCP && p.TCPFlags&(decode.FlagSYN|decode.FlagACK) == decode.FlagSYN|decode.FlagACK {
				f.ClientIsA = !srcIsA
			} else if p.TCPFlags&decode.FlagSYN == 0 && p.SrcPort < 1024 && p.DstPort >= 1024 {
				f.ClientIsA = !srcIsA
			}
			f.Inspect = [2]uint8{inspectSegments, inspectSegments}
			w.curFlow = f
			w.flowStart(f)
		}
		dir = f.Direction(srcIsA)
		f.Last = ts
		f.Packets[dir]++
		f.Bytes[dir] += uint64(len(p.Payload))
		if p.TCPFlags&(decode.FlagFIN|decode.FlagRST) != 0 {
			f.Closing = true
		}
		if p.TCPFlags&decode.FlagSYN != 0 && p.Proto == decode.ProtoTCP && !f.SynSeen[dir] {
			// The stream's data starts after the SYN: knowing where
			// lets segments that overtake the first one be gathered.
			f.SynSeen[dir] = true
			f.NextSeq[dir], f.HaveSeq[dir] = p.Seq+1, true
		}
	}
	if len(p.Payload) == 0 {
		return
	}
	switch p.Proto {
	case decode.ProtoUDP:
		for _, x := range udpExtractors {
			if x.match(p) {
				x.handle(w, f, dir, p.Payload)
				break
			}
		}
	case decode.ProtoTCP:
		w.tcp(f, dir)
	}
}

// The extractor registry. Each protocol the sensor reads is one entry; a
// new one (QUIC Initial, …) is one more entry and one handler. Order
// matters: the first entry whose match accepts the payload handles it.

// udpExtractor reads UDP datagrams.
type udpExtractor struct {
	name   string
	match  func(p *decode.Packet) bool
	handle func(w *worker, f *flow.Flow, dir int, payload []byte)
}

var udpExtractors = []udpExtractor{
	{"dns", func(p *decode.Packet) bool { return extract.IsDNSPort(p.SrcPort) || extract.IsDNSPort(p.DstPort) },
		func(w *worker, _ *flow.Flow, _ int, b []byte) { w.dnsMessage(b, "udp") }},
	{"dhcp", func(p *decode.Packet) bool { return isDHCPPort(p.SrcPort) && isDHCPPort(p.DstPort) }, (*worker).dhcpMessage},
	// QUIC on any port: the long header and version say what it is.
	{"quic", func(p *decode.Packet) bool { return extract.IsQUICInitial(p.Payload) }, (*worker).quicDatagram},
	// Google QUIC: ParseGQUICCHLO rejects anything else in a few compares.
	{"gquic", func(*decode.Packet) bool { return true }, (*worker).gquicDatagram},
}

// streamExtractor reads the start of TCP payload segments, recognised by
// their first bytes, never by port.
type streamExtractor struct {
	name  string
	match func(payload []byte) bool
	// handle reads the segment and returns the bytes it took when another
	// message may follow in the same segment (0 otherwise).
	handle func(w *worker, f *flow.Flow, dir int, seq uint32, payload []byte) int
}

var streamExtractors = []streamExtractor{
	{"tls", extract.IsClientHelloStart, (*worker).helloStart},
	{"http", extract.IsRequestStart, (*worker).httpStart},
}

// dnsTCP reassembles length-prefixed DNS messages (RFC 1035 §4.2.2; several
// per segment, or one over several segments) in a bounded buffer.
func (w *worker) dnsTCP(f *flow.Flow, dir int) {
	p := &w.pkt
	payload := p.Payload
	if f == nil {
		// No state: read what is whole in this segment.
		for {
			m, rest, ok := extract.SplitTCPDNS(payload)
			if !ok {
				return
			}
			w.dnsMessage(m, "tcp")
			payload = rest
		}
	}
	f.Kind = kindDNS
	seq := p.Seq
	if p.TCPFlags&decode.FlagSYN != 0 {
		seq++
	}
	if f.HaveSeq[dir] {
		switch d := int32(seq - f.NextSeq[dir]); {
		case d < 0: // overlap with bytes already taken
			if int(-d) >= len(payload) {
				return
			}
			payload = payload[-d:]
		case d > 0: // gap: start again from this segment
			w.c.DNSTCPGaps++
			f.Buf[dir] = f.Buf[dir][:0]
		}
	}
	f.NextSeq[dir], f.HaveSeq[dir] = seq+uint32(len(p.Payload)), true
	buf := append(f.Buf[dir], payload...)
	for {
		m, rest, ok := extract.SplitTCPDNS(buf)
		if !ok {
			break
		}
		w.dnsMessage(m, "tcp")
		buf = rest
	}
	if len(buf) > dnsTCPBuffer {
		w.c.DNSTCPOversize++
		buf = buf[:0]
	}
	// Keep the unparsed tail at the front of the flow's buffer.
	f.Buf[dir] = append(f.Buf[dir][:0], buf...)
}

func (w *worker) dnsMessage(b []byte, transport string) {
	if quickDNS && w.dnsQuick(b) {
		return
	}
	partial, err := extract.ParseDNS(b, &w.msg)
	if err != nil {
		w.c.DNSMalformed++
		return
	}
	w.c.DNSMessages++
	if partial {
		w.c.DNSPartial++
	}
	m := &w.msg
	set := w.cfg.Rules()
	w.hits = w.hits[:0]
	var matched []alert.Matched
	matchName := func(name, field string) {
		n := len(w.hits)
		w.hits = set.MatchName(name, w.hits)
		for range w.hits[n:] {
			matched = append(matched, alert.Matched{Atomic: name, Field: field})
		}
	}
	var q dns.Question
	var qname string
	if len(m.Question) > 0 {
		// Servers answer only the first question; so does the sensor.
		q = m.Question[0]
		qname = extract.DNSName(q.Name)
		c := w.questionContact(qname, m.Response)
		w.matchContact(set, &c, "dns.question.name", &matched, false)
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		if name := extract.DNSName(h.Name); name != qname {
			matchName(name, "dns.answers.name")
		}
		switch r := rr.(type) {
		case *dns.CNAME:
			matchName(extract.DNSName(r.Target), "dns.answers.data")
		case *dns.A:
			w.matchAddr(set, r.A, &matched)
		case *dns.AAAA:
			w.matchAddr(set, r.AAAA, &matched)
		}
	}
	w.hits, matched = dedupHits(w.hits, matched)
	if m.Response && len(w.hits) > 0 {
		w.learn(m, matched)
	}
	if len(w.hits) == 0 && !w.cfg.everyObservation() {
		return
	}
	p := &w.pkt
	ev := w.baseEvent("dns", transport)
	d := &alert.DNS{ID: m.Id}
	if len(m.Question) > 0 {
		d.Question = alert.DNSQuestion{Name: qname, Type: typeString(q.Qtype), Class: dns.Class(q.Qclass).String()}
	}
	if m.Opcode != 0 {
		d.OpCode = dns.OpcodeToString[m.Opcode]
	}
	client, server := p.Src, netip.AddrPortFrom(p.Dst, p.DstPort)
	var echNames []string
	if m.Response {
		d.Type = "answer"
		d.ResponseCode = rcodeString(m.Rcode)
		client, server = p.Dst, netip.AddrPortFrom(p.Src, p.SrcPort)
		for _, rr := range m.Answer {
			h := rr.Header()
			d.Answers = append(d.Answers, alert.DNSAnswer{Name: extract.DNSName(h.Name), Type: typeString(h.Rrtype), Data: extract.DNSRData(rr), TTL: h.Ttl})
			switch r := rr.(type) {
			case *dns.A:
				d.ResolvedIP = append(d.ResolvedIP, r.A.String())
			case *dns.AAAA:
				d.ResolvedIP = append(d.ResolvedIP, r.AAAA.String())
			case *dns.HTTPS:
				echNames = appendECHNames(echNames, r.Value)
			case *dns.SVCB:
				echNames = appendECHNames(echNames, r.Value)
			}
		}
	} else {
		d.Type = "query"
	}
	d.HeaderFlags = headerFlags(m)
	ev.DNS = d
	if len(echNames) > 0 {
		w.cfg.ECH.Learn(echNames)
	}
	if partial || len(echNames) > 0 {
		ev.Phonehome = &alert.PhonehomeExt{Partial: partial, ECHPublicNames: echNames}
	}
	w.emit(ev, client, server, matched)
}

// questionContact is the contact a DNS question is matched as: the name
// with the server it was sent to, for rules that combine the name with
// where it went (fallback resolvers). The server's own address and port
// were matched when its flow started.
func (w *worker) questionContact(name string, response bool) rules.Contact {
	p := &w.pkt
	if response {
		return rules.Contact{Name: name, Addr: p.Src.Unmap(), Port: p.SrcPort, Proto: p.Proto}
	}
	return rules.Contact{Name: name, Addr: p.Dst.Unmap(), Port: p.DstPort, Proto: p.Proto}
}

// quickDNS lets dnsQuick handle messages; tests turn it off to compare.
var quickDNS = true

// dnsQuick handles a DNS message that matches nothing, the common case,
// from what extract.ScanDNS reads in place: it matches the question and
// the answers as dnsMessage does and, when nothing matched, counts the
// message and reports it handled. A message that matches, or that the
// scan leaves to ParseDNS, is not handled: dnsMessage then does it all,
// so every event, learned address and counter comes from one path.
func (w *worker) dnsQuick(b []byte) bool {
	if w.cfg.everyObservation() || !extract.ScanDNS(b, &w.scan) {
		return false
	}
	s := &w.scan
	set := w.cfg.Rules()
	w.hits = w.hits[:0]
	c := w.questionContact(bytesString(s.QName), s.Response)
	var matched []alert.Matched
	w.matchContact(set, &c, "dns.question.name", &matched, false)
	for i := 0; i < len(s.Answers) && len(w.hits) == 0; i++ {
		a := &s.Answers[i]
		if !bytes.Equal(a.Name, s.QName) {
			w.hits = set.MatchName(bytesString(a.Name), w.hits)
		}
		switch {
		case a.Target != nil:
			w.hits = set.MatchName(bytesString(a.Target), w.hits)
		case a.Addr.IsValid():
			w.hits = set.MatchAddr(a.Addr, w.hits)
		}
	}
	if len(w.hits) > 0 {
		w.hits = w.hits[:0]
		return false
	}
	w.c.DNSMessages++
	return true
}

// learn remembers the A/AAAA addresses of an answer whose names matched
// (any name of a CNAME chain), so that a later connection to one of them
// is known for what it is even without a name on it.
func (w *worker) learn(m *dns.Msg, matched []alert.Matched) {
	var hits []rules.Hit
	name := ""
	for i, h := range w.hits {
		switch h.Kind {
		case rules.KindDomain, rules.KindName, rules.KindPattern:
			if name == "" {
				name = matched[i].Atomic
			}
			hits = append(hits, h)
		}
	}
	if len(hits) == 0 {
		return
	}
	for _, rr := range m.Answer {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			w.cfg.Learned.Learn(a.Unmap(), name, hits, rr.Header().Ttl, w.now)
		}
	}
}

// dhcpName is a host name DHCP gave an address or a MAC.
type dhcpName struct {
	ip   netip.Addr
	mac  string
	name string
}

func isDHCPPort(p uint16) bool { return p == 67 || p == 68 || p == 546 || p == 547 }

// dhcpMessage reads the host name a DHCP client sent or was given, to
// name the host in the inventory.
func (w *worker) dhcpMessage(_ *flow.Flow, _ int, b []byte) {
	var h extract.DHCPHost
	var err error
	p := &w.pkt
	if p.SrcPort == 546 || p.SrcPort == 547 {
		w.scratch, err = extract.ParseDHCPv6(b, w.scratch[:0], &h)
	} else {
		w.scratch, err = extract.ParseDHCPv4(b, w.scratch[:0], &h)
	}
	if err != nil || len(h.Hostname) == 0 {
		return
	}
	w.c.DHCPNames++
	d := &dhcpName{ip: h.Addr, name: string(extract.AppendName(nil, h.Hostname))}
	if h.HasMAC {
		d.mac = formatMAC(h.MAC)
	}
	w.out <- &observation{dhcp: d}
}

// appendECHNames adds the public names of the ech SvcParam of an
// HTTPS/SVCB answer (escaped: they come from the wire).
func appendECHNames(names []string, kv []dns.SVCBKeyValue) []string {
	for _, v := range kv {
		e, ok := v.(*dns.SVCBECHConfig)
		if !ok {
			continue
		}
		extract.ParseECHConfigList(e.ECH, func(c extract.ECHConfig) {
			if c.PublicName != nil && len(names) < 8 {
				names = append(names, string(extract.AppendName(nil, c.PublicName)))
			}
		})
	}
	return names
}

func (w *worker) matchAddr(set *rules.Set, ip net.IP, matched *[]alert.Matched) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return
	}
	a = a.Unmap()
	n := len(w.hits)
	w.hits = set.MatchAddr(a, w.hits)
	for range w.hits[n:] {
		*matched = append(*matched, alert.Matched{Atomic: a.String(), Field: "dns.resolved_ip"})
	}
}

// clientHello parses a ClientHello and reports it; it returns the parse
// error (ErrIncomplete when more bytes are needed).
func (w *worker) clientHello(payload []byte) error {
	var err error
	w.hello.Reset()
	w.scratch, err = extract.ParseClientHello(payload, w.scratch[:0], &w.hello)
	switch err {
	case nil:
	case extract.ErrIncomplete, extract.ErrNotTLS:
		return err
	default:
		w.c.HelloMalformed++
		w.c.UnseenTLS[UnseenMalformed]++
		return err
	}
	w.c.ClientHellos++
	return w.reportHello(&w.hello, "tls", "tcp", &w.c.UnseenTLS, "")
}

// reportHello matches and reports a parsed ClientHello, from TCP or from
// QUIC CRYPTO frames.
func (w *worker) reportHello(h *extract.ClientHello, proto, transport string, unseen *UnseenCounts, quicVersion string) error {
	w.name = extract.AppendName(w.name[:0], h.SNI)
	echOuter := false
	switch {
	case h.ECH && len(h.SNI) > 0 && w.cfg.ECH.Has(bytesString(w.name)):
		// Real ECH: server_name is the public name of the client-facing
		// server; the destination is encrypted. The outer name is still
		// matched: it names the server the client talks to.
		echOuter = true
		w.c.ECHOuter++
		unseen[UnseenEncrypted]++
	case h.ESNI && len(h.SNI) == 0:
		unseen[UnseenEncrypted]++
	case len(h.SNI) == 0:
		unseen[UnseenNoSNI]++
	case h.ECH:
		w.c.ECHUnverified++
	}
	p := &w.pkt
	set := w.cfg.Rules()
	w.hits = w.hits[:0]
	var matched []alert.Matched
	ja4 := byte('t')
	if proto == "quic" {
		ja4 = 'q'
	}
	c := w.dstContact()
	if set.UsesKind(rules.KindJA4) && (len(h.CipherSuites) > 0 || h.SSLv2) {
		c.JA4 = bytesString(extract.AppendJA4(w.ja4[:0], h, ja4))
	}
	// Every host_name entry is matched: a client may send several. A
	// hello without one is still a contact (JA4, address rules).
	names := 0
	for name := range h.HostNames() {
		w.name = extract.AppendName(w.name[:0], name)
		c.Name = bytesString(w.name)
		w.matchContact(set, &c, "tls.client.server_name", &matched, w.curFlow == nil)
		names++
	}
	if names == 0 {
		w.matchContact(set, &c, "tls.client.server_name", &matched, w.curFlow == nil)
	}
	w.hits, matched = dedupHits(w.hits, matched)
	w.name = extract.AppendName(w.name[:0], h.SNI)
	if len(w.hits) == 0 && !w.cfg.everyObservation() {
		return nil
	}
	ev := w.baseEvent(proto, transport)
	if quicVersion != "" {
		ev.Phonehome = &alert.PhonehomeExt{QUICVersion: quicVersion}
	}
	t := &alert.TLS{Client: alert.TLSClient{ECH: h.ECH, ECHOuter: echOuter, ESNI: h.ESNI, SSLv2: h.SSLv2}}
	// JA4 costs two SHA-256s: only for hellos that are reported.
	if len(h.CipherSuites) > 0 || h.SSLv2 {
		t.Client.JA4 = string(extract.AppendJA4(w.ja4[:0], h, ja4))
	}
	if len(h.SNI) > 0 {
		t.Client.ServerName = string(w.name)
	}
	for proto := range h.ALPNProtocols() {
		t.Client.ALPN = append(t.Client.ALPN, string(extract.AppendText(nil, proto, 64)))
	}
	t.VersionProtocol = "tls"
	switch {
	case h.OffersTLS13:
		t.Version = "1.3"
	case h.SSLv2:
		t.VersionProtocol, t.Version = "ssl", "2.0"
	default:
		t.Version = tlsVersion(h.Version)
	}
	ev.TLS = t
	w.emit(ev, p.Src, netip.AddrPortFrom(p.Dst, p.DstPort), matched)
	return nil
}

// httpRequest reads one request head and returns the bytes it took (0
// when the head is not complete in this segment).
func (w *worker) httpRequest(payload []byte) int {
	w.http.Reset()
	if extract.ParseHTTPRequest(payload, &w.http) != nil {
		return 0
	}
	w.c.HTTPRequests++
	r := &w.http
	p := &w.pkt
	set := w.cfg.Rules()
	w.hits = w.hits[:0]
	var matched []alert.Matched
	// Through a proxy the target's authority says where the request goes;
	// the Host header should agree, but a client may make them differ:
	// both are matched. url.domain is the Host header when there is one
	// (as tshark and Zeek report it), else the target's host.
	c := w.dstContact()
	var ua []byte
	if r.UserAgent != nil {
		ua = extract.AppendText(w.ua[:0], r.UserAgent, 512)
		w.ua = ua
		c.UserAgent = bytesString(ua)
	}
	if auth := hostOnly(extract.TargetAuthority(r)); len(auth) > 0 && !bytes.EqualFold(auth, hostOnly(r.Host)) {
		w.name = extract.AppendName(w.name[:0], auth)
		c.Name = bytesString(w.name)
		w.matchContact(set, &c, "url.original", &matched, w.curFlow == nil)
		if len(r.Host) == 0 {
			r.Host = auth
		}
	}
	host := hostOnly(r.Host)
	w.name = extract.AppendName(w.name[:0], host)
	c.Name = bytesString(w.name)
	w.matchContact(set, &c, "url.domain", &matched, w.curFlow == nil)
	w.hits, matched = dedupHits(w.hits, matched)
	if len(w.hits) > 0 || w.cfg.everyObservation() {
		ev := w.baseEvent("http", "tcp")
		ev.HTTP = &alert.HTTP{Request: alert.HTTPRequest{Method: string(extract.AppendText(nil, r.Method, 32))}}
		if v := r.Version; len(v) > 5 {
			ev.HTTP.Version = string(extract.AppendText(nil, v[5:], 8))
		}
		ev.URL = &alert.URL{Original: string(extract.AppendText(nil, r.Target, 1024))}
		if r.Host != nil {
			ev.URL.Domain = string(w.name)
		}
		if r.UserAgent != nil {
			ev.UserAgent = &alert.UserAgent{Original: string(ua)}
		}
		w.emit(ev, p.Src, netip.AddrPortFrom(p.Dst, p.DstPort), matched)
	}
	if r.Complete {
		return r.HeadLen
	}
	return 0
}

// dstContact is the contact of the packet at hand (client to server),
// with the destination's country and ASN when rules need them.
func (w *worker) dstContact() rules.Contact {
	p := &w.pkt
	c := rules.Contact{Addr: p.Dst.Unmap(), Port: p.DstPort, Proto: p.Proto}
	c.Country, c.ASN = w.geoOf(w.curFlow, c.Addr)
	return c
}

// matchContact appends the hits of c, with what matched. Address, port,
// country and ASN hits on a flow with state were had once, when the
// flow started (flowStart): they are kept only when addrKinds is set.
func (w *worker) matchContact(set *rules.Set, c *rules.Contact, nameField string, matched *[]alert.Matched, addrKinds bool) {
	n := len(w.hits)
	w.hits = set.Match(c, w.hits)
	out := w.hits[:n]
	for _, h := range w.hits[n:] {
		m, addrKind := matchedOf(h, c, nameField)
		if addrKind && !addrKinds {
			continue
		}
		out = append(out, h)
		*matched = append(*matched, m)
	}
	w.hits = out
}

// matchedOf says what a hit matched, for threat.enrichments.matched, and
// whether it is about the destination rather than a name.
func matchedOf(h rules.Hit, c *rules.Contact, nameField string) (alert.Matched, bool) {
	// The contact's strings alias the worker's buffers: a hit keeps copies.
	switch h.Kind {
	case rules.KindCIDR:
		return alert.Matched{Atomic: c.Addr.String(), Field: "destination.ip"}, true
	case rules.KindPort:
		return alert.Matched{Atomic: strconv.Itoa(int(c.Port)), Field: "destination.port"}, true
	case rules.KindASN:
		return alert.Matched{Atomic: rules.FormatASN(c.ASN), Field: "destination.as.number"}, true
	case rules.KindCountry:
		return alert.Matched{Atomic: c.Country, Field: "destination.geo.country_iso_code"}, true
	case rules.KindJA4:
		return alert.Matched{Atomic: strings.Clone(c.JA4), Field: "tls.client.ja4"}, false
	case rules.KindUserAgent:
		return alert.Matched{Atomic: strings.Clone(c.UserAgent), Field: "user_agent.original"}, false
	case rules.KindAll, rules.KindAny:
		// A combined condition (what held is in the reason): reported on
		// the name when it has one, else on the destination.
		if c.Name != "" {
			return alert.Matched{Atomic: strings.Clone(c.Name), Field: nameField}, false
		}
		return alert.Matched{Atomic: c.Addr.String(), Field: "destination.ip"}, c.JA4 == "" && c.UserAgent == ""
	}
	return alert.Matched{Atomic: strings.Clone(c.Name), Field: nameField}, false
}

// geoOf returns the country and ASN of a destination, looked up once per
// flow (cached in it) and only when the rules in force need them.
func (w *worker) geoOf(f *flow.Flow, a netip.Addr) (string, uint32) {
	if f != nil && f.GeoDone {
		return geo.Result{Country: f.Country}.CountryCode(), f.ASN
	}
	if w.cfg.Geo == nil || !w.cfg.Rules().NeedsGeo() {
		return "", 0
	}
	db := w.cfg.Geo()
	if db == nil {
		return "", 0
	}
	r := db.Lookup(a)
	w.c.GeoLookups++
	if f != nil {
		f.Country, f.ASN, f.GeoDone = r.Country, r.ASN, true
	}
	return r.CountryCode(), r.ASN
}

// addGeo sets an endpoint's country and AS from what its flow learned.
func addGeo(e *alert.Endpoint, f *flow.Flow) {
	if c := (geo.Result{Country: f.Country}).CountryCode(); c != "" {
		e.Geo = &alert.Geo{CountryISOCode: c}
	}
	if f.ASN != 0 {
		e.AS = &alert.AS{Number: f.ASN}
	}
}

func (w *worker) baseEvent(proto, transport string) *alert.Event {
	p := &w.pkt
	ev := &alert.Event{
		Timestamp: time.Unix(0, w.now).UTC(),
		ECS:       alert.ECS{Version: alert.ECSVersion},
		Event: alert.EventMeta{
			Kind:     alert.KindEvent,
			Category: []string{"network"},
			Type:     []string{"protocol"},
			Dataset:  "phonehome." + proto,
			Module:   "phonehome",
		},
		Network:     alert.Network{Protocol: proto, Transport: transport, Type: "ipv4"},
		Source:      alert.Endpoint{IP: p.Src.Unmap().String(), Port: p.SrcPort},
		Destination: alert.Endpoint{IP: p.Dst.Unmap().String(), Port: p.DstPort},
		Observer:    w.cfg.Observer,
	}
	if p.Src.Is6() && !p.Src.Is4In6() {
		ev.Network.Type = "ipv6"
	}
	if p.HasMAC {
		ev.Source.MAC = formatMAC(p.SrcMAC)
	}
	if f := w.curFlow; f != nil && f.GeoDone {
		addGeo(&ev.Destination, f)
	}
	return ev
}

func (w *worker) emit(ev *alert.Event, client netip.Addr, server netip.AddrPort, matched []alert.Matched) {
	w.c.Observations++
	w.c.Hits += uint64(len(w.hits))
	o := &observation{event: ev, client: client.Unmap(), server: server, matched: matched}
	if len(w.hits) > 0 {
		o.hits = append([]rules.Hit(nil), w.hits...)
		if w.cfg.everyObservation() {
			ev.Rule = ruleObject(o.hits[0])
			en := make([]alert.Enrichment, len(o.hits))
			for i, h := range o.hits {
				en[i] = enrichment(h, matched[i])
			}
			ev.Threat = &alert.Threat{Enrichments: en}
		}
	}
	if client == w.pkt.Src && w.pkt.HasMAC {
		o.clientMAC = ev.Source.MAC
	}
	if f := w.curFlow; f != nil && len(w.hits) > 0 && ev.Network.Protocol != "dns" {
		// The flow carried a matched contact: its traffic is counted
		// when it ends. (A DNS flow goes to the resolver, not the vendor.)
		f.Matched |= flowBits(w.hits)
	}
	w.out <- o
}

// dedupHits keeps one hit per rule (the first), with its matched entry.
func dedupHits(hits []rules.Hit, matched []alert.Matched) ([]rules.Hit, []alert.Matched) {
	if len(hits) < 2 {
		return hits, matched
	}
	out, outM := hits[:0], matched[:0]
next:
	for i, h := range hits {
		for _, o := range out {
			if o.Rule == h.Rule {
				continue next
			}
		}
		out = append(out, h)
		outM = append(outM, matched[i])
	}
	return out, outM
}

// bytesString views b as a string for a map look-up that does not keep
// it: no copy on the per-packet path.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// hostOnly strips the port and IPv6 brackets from a Host header value.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		for i := 1; i < len(h); i++ {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	for i := len(h) - 1; i >= 0; i-- {
		switch c := h[i]; {
		case c == ':':
			return h[:i]
		case c < '0' || c > '9':
			return h
		}
	}
	return h
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func rcodeString(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}

func headerFlags(m *dns.Msg) []string {
	var f []string
	if m.Authoritative {
		f = append(f, "AA")
	}
	if m.Truncated {
		f = append(f, "TC")
	}
	if m.RecursionDesired {
		f = append(f, "RD")
	}
	if m.RecursionAvailable {
		f = append(f, "RA")
	}
	if m.AuthenticatedData {
		f = append(f, "AD")
	}
	if m.CheckingDisabled {
		f = append(f, "CD")
	}
	return f
}

func tlsVersion(v uint16) string {
	switch v {
	case 0x0300:
		return "3.0"
	case 0x0301:
		return "1.0"
	case 0x0302:
		return "1.1"
	case 0x0303:
		return "1.2"
	case 0x0304:
		return "1.3"
	}
	return strconv.Itoa(int(v>>8)) + "." + strconv.Itoa(int(v&0xff))
}

// formatMAC writes a MAC address the way ECS asks: upper-case, hyphens.
func formatMAC(m [6]byte) string {
	const hexd = "0123456789ABCDEF"
	var b [17]byte
	for i, c := range m {
		if i > 0 {
			b[i*3-1] = '-'
		}
		b[i*3] = hexd[c>>4]
		b[i*3+1] = hexd[c&0xf]
	}
	return string(b[:])
}
