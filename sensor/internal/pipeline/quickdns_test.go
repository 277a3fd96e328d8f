package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// TestQuickDNSSameAsFull: with dnsQuick on, a run gives the same events,
// counters and learned addresses as with every message unpacked, on DNS
// that matches in each place it can (question, CNAME target, answer
// owner, address) and on DNS that does not; and on the demo capture and
// the shared real captures when present.
func TestQuickDNSSameAsFull(t *testing.T) {
	kasp := "dnl-03.geo.kaspersky.com"
	fs := frames(t, func(w *testcap.Writer) error {
		// A client per exchange: alerts for one host and rule are
		// reported once.
		var id uint16
		dnsPair := func(name string, qtype uint16, rrs ...dns.RR) error {
			id++
			q := testcap.Query(name, qtype, id)
			return w.DNS(testcap.NewHost(fmt.Sprintf("10.1.1.%d", id), 0), resolver, q, testcap.Reply(q, rrs...))
		}
		steps := []error{
			dnsPair("www.example.org", dns.TypeA, testcap.A("www.example.org", "192.0.2.1", 60)),
			dnsPair(kasp, dns.TypeA, testcap.A(kasp, "198.51.100.7", 60)),
			dnsPair("cdn.example.org", dns.TypeA, testcap.CNAME("cdn.example.org", kasp, 60), testcap.A(kasp, "198.51.100.8", 60)),
			dnsPair("other.example.org", dns.TypeA, testcap.A("ksn-a.kaspersky-labs.com", "198.51.100.9", 60)),
			dnsPair("UPPER.Example.ORG", dns.TypeAAAA),
			dnsPair("nothing.example.org", dns.TypeA, testcap.CNAME("nothing.example.org", "edge.example.net", 60), testcap.A("edge.example.net", "192.0.2.2", 60)),
		}
		id++
		q := testcap.Query("nx.example.org", dns.TypeA, id)
		steps = append(steps, w.DNS(client, resolver, q, testcap.NXDomain(q, "example.org")))
		for _, err := range steps {
			if err != nil {
				return err
			}
		}
		// A connection to an address learned from a matching answer.
		return w.TCPSession(testcap.NewHost("10.1.2.1", 0), testcap.NewHost("198.51.100.8", 0), 0, 443, [][]byte{[]byte("x")}, nil)
	})
	// The quick path must have had its chance: most of these messages
	// are ones ScanDNS reads.
	var scan extract.DNSScan
	scanned := 0
	for _, f := range fs {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && extract.ScanDNS(udp.Payload, &scan) {
			scanned++
		}
	}
	if scanned < 10 {
		t.Fatalf("ScanDNS reads %d of the 14 messages: the quick path is not compared", scanned)
	}
	sources := map[string]func() capture.Source{
		"frames": func() capture.Source { return &sliceSource{frames: fs} },
	}
	files := []string{filepath.Join("..", "..", "testdata", "demo.pcap")}
	shared, _ := filepath.Glob(filepath.Join("..", "..", "..", "..", "shared", "testdata", "pcaps", "*", "*.pcap*"))
	if len(shared) == 0 {
		t.Log("../shared/testdata/pcaps absent: comparing on the demo capture and frames only")
	}
	for _, name := range append(files, shared...) {
		sources[filepath.Base(name)] = func() capture.Source {
			f, err := capture.OpenFile(name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
	}
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	run := func(quick bool, src capture.Source) (*Stats, []string) {
		defer func(q bool) { quickDNS = q }(quickDNS)
		quickDNS = quick
		var events []string
		cfg := Config{Workers: 1, Rules: func() *rules.Set { return set }, Inventory: inventory.New(inventory.Config{}), Emit: func(ev *alert.Event) {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, string(b))
		}}
		st, err := Run(t.Context(), []capture.Source{src}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st, events
	}
	for name, open := range sources {
		full, fullEvents := run(false, open())
		quick, quickEvents := run(true, open())
		if name == "frames" && (full.DNSMessages != 14 || full.Alerts != 4) {
			t.Errorf("frames: %d DNS messages, %d alerts; the test lost its point", full.DNSMessages, full.Alerts)
		}
		if !reflect.DeepEqual(full.Counters, quick.Counters) || full.Events != quick.Events || full.Alerts != quick.Alerts || full.LearnedAdded != quick.LearnedAdded {
			t.Errorf("%s: counters differ\nfull  %+v\nquick %+v", name, full.Counters, quick.Counters)
		}
		if !reflect.DeepEqual(fullEvents, quickEvents) {
			t.Errorf("%s: events differ: %d full, %d quick", name, len(fullEvents), len(quickEvents))
		}
		t.Logf("%s: %d DNS messages, %d events", name, full.DNSMessages, len(fullEvents))
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPacketDNSAnswer: a DNS answer (a CNAME, two addresses) for a
// name that matches nothing, read by dnsQuick and, for comparison, by
// ParseDNS.
func BenchmarkPacketDNSAnswer(b *testing.B) {
	fs := frames(b, func(w *testcap.Writer) error {
		q := testcap.Query("www.example.org", dns.TypeA, 9)
		return w.DNS(client, resolver, q, testcap.Reply(q, testcap.CNAME("www.example.org", "edge.example.net", 60),
			testcap.A("edge.example.net", "192.0.2.1", 60), testcap.A("edge.example.net", "192.0.2.2", 60)))
	})
	answer := fs[len(fs)-1]
	for _, quick := range []bool{true, false} {
		b.Run(map[bool]string{true: "quick", false: "full"}[quick], func(b *testing.B) {
			defer func(q bool) { quickDNS = q }(quickDNS)
			quickDNS = quick
			w, _ := newTestWorker(b, false)
			ts := time.Now().UnixNano()
			b.ReportAllocs()
			for b.Loop() {
				w.packet(layers.LinkTypeEthernet, answer, ts)
			}
			if w.c.DNSMessages == 0 {
				b.Fatal("no DNS message counted")
			}
		})
	}
}

// TestInPlaceWorkers: a classic pcap file read in place gives one, two or
// three workers the same packets as one worker reading it packet by
// packet (the file hidden behind an interface is copied as live packets
// are): counts, DNS messages, ClientHellos; alerts too with one worker
// (with more, an answer and a connection to its address on two workers
// race: README "Flows").
func TestInPlaceWorkers(t *testing.T) {
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	run := func(workers int, inPlace bool) *Stats {
		f, err := capture.OpenFile(filepath.Join("..", "..", "testdata", "demo.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var src capture.Source = f
		if !inPlace {
			src = struct{ capture.Source }{f}
		}
		if (capture.InPlace(src) != nil) != inPlace {
			t.Fatalf("in place %v not as asked", !inPlace)
		}
		cfg := Config{Workers: workers, Rules: func() *rules.Set { return set }, Inventory: inventory.New(inventory.Config{}), Emit: func(*alert.Event) {}}
		st, err := Run(t.Context(), []capture.Source{src}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	want := run(1, false)
	if want.Packets == 0 || want.DNSMessages == 0 || want.ClientHellos == 0 || want.Alerts == 0 {
		t.Fatalf("demo capture read as %+v", want)
	}
	for _, workers := range []int{1, 2, 3} {
		got := run(workers, true)
		if got.Packets != want.Packets || got.Bytes != want.Bytes || got.DNSMessages != want.DNSMessages ||
			got.ClientHellos != want.ClientHellos || (workers == 1 && got.Alerts != want.Alerts) || !got.First.Equal(want.First) || !got.Last.Equal(want.Last) {
			t.Errorf("%d workers in place: %d packets, %d bytes, %d DNS, %d hellos, %d alerts, %v-%v; want %d, %d, %d, %d, %d, %v-%v", workers,
				got.Packets, got.Bytes, got.DNSMessages, got.ClientHellos, got.Alerts, got.First, got.Last,
				want.Packets, want.Bytes, want.DNSMessages, want.ClientHellos, want.Alerts, want.First, want.Last)
		}
	}
}
