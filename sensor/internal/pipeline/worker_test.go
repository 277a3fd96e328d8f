package pipeline

import (
	"bytes"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// frames builds a capture with testcap and returns its frames.
func frames(t testing.TB, build func(w *testcap.Writer) error) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := build(w); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		out = append(out, data)
	}
	return out
}

func newTestWorker(t testing.TB, inspect bool) (*worker, chan *observation) {
	t.Helper()
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	obs := make(chan *observation, 1<<16)
	cfg := &Config{Rules: func() *rules.Set { return set }, Inspect: inspect, Inventory: inventory.New(inventory.Config{}), Emit: func(*alert.Event) {}}
	return newWorker(cfg, obs), obs
}

var (
	client   = testcap.NewHost("10.1.0.5", 0)
	resolver = testcap.NewHost("10.1.0.53", 0)
	web      = testcap.NewHost("192.0.2.80", 0)
)

// TestRetransmissionOnce: a retransmitted request segment is one
// observation, not two.
func TestRetransmissionOnce(t *testing.T) {
	fs := frames(t, func(w *testcap.Writer) error {
		return w.TCPSession(client, web, 0, 80, [][]byte{testcap.HTTPRequest("GET", "dnl-02.geo.kaspersky.com", "/", "t")}, nil)
	})
	w, obs := newTestWorker(t, false)
	ts := time.Now().UnixNano()
	for _, f := range fs {
		w.packet(layers.LinkTypeEthernet, f, ts)
	}
	// Replay the data segment (a retransmission).
	for _, f := range fs {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 0 && tcp.DstPort == 80 {
			w.packet(layers.LinkTypeEthernet, f, ts)
		}
	}
	if n := len(obs); n != 1 {
		t.Errorf("%d observations, want 1 (retransmission counted twice?)", n)
	}
	if w.c.HTTPRequests != 1 {
		t.Errorf("HTTP requests %d", w.c.HTTPRequests)
	}
}

func benchFrames(b *testing.B) (miss []byte, query []byte) {
	fs := frames(b, func(w *testcap.Writer) error {
		payload := bytes.Repeat([]byte{0x17, 3, 3, 0, 0x40}, 240) // TLS application data
		if err := w.TCPSession(client, web, 40000, 443, [][]byte{payload}, nil); err != nil {
			return err
		}
		q := testcap.Query("www.example.org", 1, 9)
		return w.DNS(client, resolver, q, nil)
	})
	for _, f := range fs {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 1000 {
			miss = f
		}
		if _, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			query = f
		}
	}
	if miss == nil || query == nil {
		b.Fatal("frames not found")
	}
	return miss, query
}

// BenchmarkPacketMiss: a TCP data packet of a flow that matches nothing,
// past its first segments (the common case on a tap).
func BenchmarkPacketMiss(b *testing.B) {
	miss, _ := benchFrames(b)
	w, _ := newTestWorker(b, false)
	ts := time.Now().UnixNano()
	b.ReportAllocs()
	b.SetBytes(int64(len(miss)))
	for b.Loop() {
		w.packet(layers.LinkTypeEthernet, miss, ts)
	}
}

// BenchmarkPacketDNSQuery: a DNS query for a name that matches nothing.
func BenchmarkPacketDNSQuery(b *testing.B) {
	_, query := benchFrames(b)
	w, _ := newTestWorker(b, false)
	ts := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		w.packet(layers.LinkTypeEthernet, query, ts)
	}
}

// helloFrames returns the frames of a TLS connection whose ClientHello
// for name is cut into segments of size bytes, and the indexes of the
// client's data frames.
func helloFrames(t *testing.T, name string, size int) ([][]byte, []int) {
	t.Helper()
	hello, err := testcap.ClientHello(name)
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(t, func(w *testcap.Writer) error {
		return w.TCPSession(client, web, 0, 443, testcap.Segments(hello, size), nil)
	})
	var data []int
	for i, f := range fs {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 0 && tcp.DstPort == 443 {
			data = append(data, i)
		}
	}
	if len(data) < 3 {
		t.Fatalf("hello of %d bytes in %d segments", len(hello), len(data))
	}
	return fs, data
}

func TestHelloOverSegments(t *testing.T) {
	fs, data := helloFrames(t, "ksn-url-geo.kaspersky-labs.com", 500)
	w, obs := newTestWorker(t, false)
	ts := time.Now().UnixNano()
	for i, f := range fs {
		w.packet(layers.LinkTypeEthernet, f, ts)
		if i == data[1] { // a retransmission of the second segment changes nothing
			w.packet(layers.LinkTypeEthernet, f, ts)
		}
	}
	if len(obs) != 1 || w.c.HelloReassembled != 1 || w.c.HelloIncomplete != 0 {
		t.Fatalf("%d observations, counters %+v", len(obs), w.c)
	}
	if o := <-obs; o.event.TLS == nil || o.event.TLS.Client.ServerName != "ksn-url-geo.kaspersky-labs.com" {
		t.Errorf("event %+v", o.event)
	}
}

// TestHelloSegmentOrders feeds the client's data segments of one
// connection in several orders: the hello comes out whole whatever the
// order; a lost segment is counted as unseen when the flow ends.
func TestHelloSegmentOrders(t *testing.T) {
	const name = "ksn-url-geo.kaspersky-labs.com"
	tests := []struct {
		name  string
		order func(data []int) []int // data frame indexes in the order sent
		seen  bool
		lost  uint64 // streams whose start never came
	}{
		{"in order", func(d []int) []int { return d }, true, 0},
		{"reversed", func(d []int) []int { return reversed(d) }, true, 0},
		{"first segment last", func(d []int) []int { return append(slices.Clone(d[1:]), d[0]) }, true, 0},
		{"duplicates", func(d []int) []int { return append([]int{d[2], d[0]}, d...) }, true, 0},
		{"lost segment", func(d []int) []int { return append(slices.Clone(d[:1]), d[2:]...) }, false, 0},
		{"lost first segment", func(d []int) []int { return slices.Clone(d[1:]) }, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, data := helloFrames(t, name, 500)
			isData := map[int]bool{}
			for _, i := range data {
				isData[i] = true
			}
			w, obs := newTestWorker(t, false)
			ts := time.Now().UnixNano()
			sentData := false
			for i, f := range fs {
				if isData[i] {
					if !sentData {
						for _, j := range tt.order(data) {
							w.packet(layers.LinkTypeEthernet, fs[j], ts)
						}
						sentData = true
					}
					continue
				}
				w.packet(layers.LinkTypeEthernet, f, ts)
			}
			w.finish()
			obs = eventsOnly(t, obs)
			if tt.lost > 0 {
				if len(obs) != 0 || w.c.StreamStartLost != tt.lost {
					t.Fatalf("%d observations, counters %+v", len(obs), w.c)
				}
				return
			}
			if !tt.seen {
				if len(obs) != 0 || w.c.HelloIncomplete != 1 || w.c.UnseenTLS[UnseenGap] != 1 {
					t.Fatalf("%d observations, counters %+v", len(obs), w.c)
				}
				return
			}
			if len(obs) != 1 || w.c.HelloReassembled != 1 || w.c.HelloIncomplete != 0 {
				t.Fatalf("%d observations, counters %+v", len(obs), w.c)
			}
			if o := <-obs; o.event.TLS == nil || o.event.TLS.Client.ServerName != name {
				t.Errorf("event %+v", o.event)
			}
			if w.gathers.Len() != 0 || w.gatherBytes != 0 {
				t.Errorf("gatherers not released: %d in use, %d bytes", w.gathers.Len(), w.gatherBytes)
			}
		})
	}
}

func reversed(d []int) []int {
	r := slices.Clone(d)
	slices.Reverse(r)
	return r
}

// TestHTTPHeadOverSegments: a request line so long that Host and
// User-Agent come in later segments, sent in several orders; and a head
// whose end never comes, reported as far as it got when the flow ends.
func TestHTTPHeadOverSegments(t *testing.T) {
	const host = "dnl-01.geo.kaspersky.com"
	target := "/bases/" + strings.Repeat("a", 700) + ".kdc"
	req := []byte("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: KasperskyLab/11.0\r\nX-Pad: " + strings.Repeat("p", 400) + "\r\n\r\n")
	tests := []struct {
		name  string
		order func(d []int) []int
	}{
		{"in order", func(d []int) []int { return d }},
		{"reversed", reversed},
		{"end lost", func(d []int) []int { return d[:len(d)-1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := frames(t, func(w *testcap.Writer) error {
				return w.TCPSession(client, web, 0, 80, testcap.Segments(req, 300), nil)
			})
			var data []int
			for i, f := range fs {
				p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 0 && tcp.DstPort == 80 {
					data = append(data, i)
				}
			}
			if len(data) < 3 {
				t.Fatalf("request in %d segments", len(data))
			}
			w, obs := newTestWorker(t, true)
			ts := time.Now().UnixNano()
			sent := false
			for i, f := range fs {
				if slices.Contains(data, i) {
					if !sent {
						for _, j := range tt.order(data) {
							w.packet(layers.LinkTypeEthernet, fs[j], ts)
						}
						sent = true
					}
					continue
				}
				w.packet(layers.LinkTypeEthernet, f, ts)
			}
			w.finish()
			obs = eventsOnly(t, obs)
			if len(obs) != 1 {
				t.Fatalf("%d observations, want 1", len(obs))
			}
			ev := (<-obs).event
			if ev.URL == nil || ev.URL.Domain != host || ev.Source.IP != "10.1.0.5" || ev.Destination.Port != 80 {
				t.Fatalf("event %+v url %+v", ev, ev.URL)
			}
			if ev.UserAgent == nil || ev.UserAgent.Original != "KasperskyLab/11.0" {
				t.Errorf("user agent %+v", ev.UserAgent)
			}
		})
	}
}

// TestDNSHTTPSECH: the ech SvcParam of an HTTPS answer is read and its
// public name reported as such.
func TestDNSHTTPSECH(t *testing.T) {
	ech, err := base64.StdEncoding.DecodeString("AEX+DQBBpQAgACDgLrm9eb/Ty7mTKlaBoVW7ZdXfmdh1hfzfKmqYOTkrYQAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA=")
	if err != nil {
		t.Fatal(err)
	}
	q := testcap.Query("crypto.cloudflare.com", dns.TypeHTTPS, 7)
	rr := &dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: "crypto.cloudflare.com.", Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 300},
		Priority: 1, Target: ".",
		Value: []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{"h2"}}, &dns.SVCBECHConfig{ECH: ech}},
	}}
	fs := frames(t, func(w *testcap.Writer) error { return w.DNS(client, resolver, q, testcap.Reply(q, rr)) })
	w, obs := newTestWorker(t, true)
	for _, f := range fs {
		w.packet(layers.LinkTypeEthernet, f, time.Now().UnixNano())
	}
	if len(obs) != 2 {
		t.Fatalf("%d observations", len(obs))
	}
	<-obs
	ev := (<-obs).event
	if ev.Phonehome == nil || !slices.Equal(ev.Phonehome.ECHPublicNames, []string{"cloudflare-ech.com"}) {
		t.Fatalf("phonehome %+v", ev.Phonehome)
	}

	// A public name not built in is learned from the answer.
	pub := "ech-front.vendor.example"
	contents := []byte{1, 0x00, 0x20, 0, 32}
	contents = append(contents, make([]byte, 32)...)
	contents = append(contents, 0, 4, 0, 1, 0, 1, 0, byte(len(pub)))
	contents = append(append(contents, pub...), 0, 0)
	cfgBytes := append([]byte{0xfe, 0x0d, byte(len(contents) >> 8), byte(len(contents))}, contents...)
	list := append([]byte{byte(len(cfgBytes) >> 8), byte(len(cfgBytes))}, cfgBytes...)
	rr.Value = []dns.SVCBKeyValue{&dns.SVCBECHConfig{ECH: list}}
	fs = frames(t, func(w *testcap.Writer) error { return w.DNS(client, resolver, q, testcap.Reply(q, rr)) })
	if w.cfg.ECH.Has(pub) {
		t.Fatal("public name known before the answer")
	}
	for _, f := range fs {
		w.packet(layers.LinkTypeEthernet, f, time.Now().UnixNano())
	}
	if !w.cfg.ECH.Has(pub) {
		t.Fatal("public name not learned from the answer")
	}
}

// TestHTTPProxyForms: the destination of absolute-form and CONNECT
// requests is matched even when the Host header names something else.
func TestHTTPProxyForms(t *testing.T) {
	tests := []struct{ name, req, domain string }{
		{"absolute form, lying Host", "GET http://dnl-01.geo.kaspersky.com/bases/x HTTP/1.1\r\nHost: harmless.example\r\n\r\n", "harmless.example"},
		{"absolute form, no Host", "GET http://dnl-01.geo.kaspersky.com:80/ HTTP/1.0\r\n\r\n", "dnl-01.geo.kaspersky.com"},
		{"CONNECT", "CONNECT ksn-a-1.kaspersky-labs.com:443 HTTP/1.1\r\nHost: ksn-a-1.kaspersky-labs.com:443\r\n\r\n", "ksn-a-1.kaspersky-labs.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := frames(t, func(w *testcap.Writer) error {
				return w.TCPSession(client, web, 0, 3128, [][]byte{[]byte(tt.req)}, nil)
			})
			w, obs := newTestWorker(t, false)
			for _, f := range fs {
				w.packet(layers.LinkTypeEthernet, f, time.Now().UnixNano())
			}
			if len(obs) != 1 {
				t.Fatalf("%d observations, want 1 alert", len(obs))
			}
			o := <-obs
			if o.event.URL == nil || o.event.URL.Domain != tt.domain || len(o.hits) == 0 {
				t.Fatalf("url %+v, %d hits", o.event.URL, len(o.hits))
			}
		})
	}
}

// eventsOnly drains obs and returns a channel with its observations
// without the flow summaries sent when matched flows end (checked by
// TestFlowAccounting).
func eventsOnly(t *testing.T, obs chan *observation) chan *observation {
	t.Helper()
	out := make(chan *observation, len(obs))
	for len(obs) > 0 {
		if o := <-obs; o.flow == nil {
			out <- o
		}
	}
	return out
}

// TestLiveSnapshot: a running pipeline's counters can be read while it
// runs, and match the final statistics at the end.
func TestLiveSnapshot(t *testing.T) {
	fs := frames(t, func(w *testcap.Writer) error {
		q := testcap.Query("dnl-01.geo.kaspersky.com", dns.TypeA, 1)
		return w.DNS(client, resolver, q, testcap.Reply(q, testcap.A("dnl-01.geo.kaspersky.com", "198.51.100.1", 60)))
	})
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	live := NewLive()
	cfg := Config{Workers: 2, Rules: func() *rules.Set { return set }, Inventory: inventory.New(inventory.Config{}), Emit: func(*alert.Event) {}, Live: live}
	src := &sliceSource{frames: fs}
	st, err := Run(t.Context(), []capture.Source{src}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	snap := live.Snapshot()
	if snap.Packets != st.Packets || snap.DNSMessages != st.DNSMessages || snap.Alerts != st.Alerts || snap.Decode.Decoded != st.Decode.Decoded || st.DNSMessages != 2 {
		t.Fatalf("live %+v\nfinal %+v", snap, st)
	}
}

// sliceSource serves frames as a capture.Source.
type sliceSource struct {
	frames [][]byte
	i      int
}

func (s *sliceSource) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if s.i >= len(s.frames) {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	f := s.frames[s.i]
	s.i++
	return f, gopacket.CaptureInfo{Timestamp: time.Unix(1800000000, int64(s.i)), CaptureLength: len(f), Length: len(f)}, layers.LinkTypeEthernet, nil
}
func (s *sliceSource) Name() string { return "frames" }
func (s *sliceSource) Close() error { return nil }
