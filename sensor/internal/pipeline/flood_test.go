package pipeline

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// sessionFrames returns the frames of a TLS connection from client port
// cport whose ClientHello for name is cut into 500-byte segments, split
// where the client's first data segment ends: before holds the handshake
// and that segment, after the rest.
func sessionFrames(t *testing.T, name string, cport uint16) (before, after [][]byte) {
	t.Helper()
	hello, err := testcap.ClientHello(name)
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(t, func(w *testcap.Writer) error {
		return w.TCPSession(client, web, cport, 443, testcap.Segments(hello, 500), nil)
	})
	for i, f := range fs {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 0 && tcp.DstPort == 443 {
			return fs[:i+1], fs[i+1:]
		}
	}
	t.Fatal("no data segment")
	return nil, nil
}

func feed(w *worker, fs [][]byte, ts int64) {
	for _, f := range fs {
		w.packet(layers.LinkTypeEthernet, f, ts)
	}
}

// TestGatherTimeout: a hello whose second segment does not come within
// gatherTimeout of packet time is let go and counted incomplete (a
// missing segment), while its flow lives on.
func TestGatherTimeout(t *testing.T) {
	before, after := sessionFrames(t, "ksn-1.kaspersky-labs.com", 40001)
	w, obs := newTestWorker(t, false)
	ts := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano()
	feed(w, before, ts)
	if w.gathers.Len() != 1 {
		t.Fatalf("%d gathers after the first segment", w.gathers.Len())
	}
	// Within the window nothing happens; past it, the next packet (of
	// any flow) ends the gather.
	_, query := dnsFrames(t, "www.example.org", 1)
	w.packet(layers.LinkTypeEthernet, query, ts+int64(gatherTimeout)/2)
	if w.gathers.Len() != 1 || w.c.GatherTimeouts != 0 {
		t.Fatalf("gather ended early: %d, counters %+v", w.gathers.Len(), w.c)
	}
	w.packet(layers.LinkTypeEthernet, query, ts+int64(gatherTimeout)+int64(gatherCheckEvery)+1)
	if w.gathers.Len() != 0 || w.gatherBytes != 0 || w.c.GatherTimeouts != 1 || w.c.HelloIncomplete != 1 || w.c.UnseenTLS[UnseenGap] != 1 {
		t.Fatalf("%d gathers, %d bytes, counters %+v", w.gathers.Len(), w.gatherBytes, w.c)
	}
	k, _ := flow.MakeKey(client.IP, web.IP, 40001, 443, 6)
	if f := w.flows.Get(k); f == nil || f.Gathering() {
		t.Fatal("flow gone, or still gathering")
	}
	// The late rest is not mistaken for a hello of its own.
	feed(w, after, ts+int64(gatherTimeout)+int64(2*time.Second))
	w.finish()
	if n := len(eventsOnly(t, obs)); n != 0 || w.c.HelloIncomplete != 1 {
		t.Fatalf("%d events, counters %+v", n, w.c)
	}
}

// TestGatherReclaim: with every gathering slot busy, a new hello takes
// the oldest one's (counted incomplete, no state) instead of being
// refused; the others complete.
func TestGatherReclaim(t *testing.T) {
	w, obs := newTestWorker(t, false)
	w.gatherCap = 2
	ts := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano()
	names := []string{"ksn-1.kaspersky-labs.com", "ksn-2.kaspersky-labs.com", "ksn-3.kaspersky-labs.com"}
	var rest [][][]byte
	for i, name := range names {
		before, after := sessionFrames(t, name, uint16(40001+i))
		feed(w, before, ts+int64(i)*int64(time.Millisecond))
		rest = append(rest, after)
	}
	if w.gathers.Len() != 2 || w.c.GatherReclaimed != 1 || w.c.GatherRefused != 0 || w.c.UnseenTLS[UnseenNoState] != 1 || w.c.HelloIncomplete != 1 {
		t.Fatalf("%d gathers, counters %+v", w.gathers.Len(), w.c)
	}
	for _, r := range rest {
		feed(w, r, ts+int64(10*time.Millisecond))
	}
	w.finish()
	obs = eventsOnly(t, obs)
	got := map[string]bool{}
	for len(obs) > 0 {
		if o := <-obs; o.event.TLS != nil {
			got[o.event.TLS.Client.ServerName] = true
		}
	}
	if len(got) != 2 || !got[names[1]] || !got[names[2]] || w.c.HelloReassembled != 2 {
		t.Fatalf("hellos %v, counters %+v", got, w.c)
	}
	if w.gathers.Len() != 0 || w.gatherBytes != 0 {
		t.Fatalf("gatherers not released: %d, %d bytes", w.gathers.Len(), w.gatherBytes)
	}
}

// TestEvictionKeepsNewConnections: a flow table full of half-open flows
// (a SYN flood) evicts them for a new connection, whose two-segment
// hello is read.
func TestEvictionKeepsNewConnections(t *testing.T) {
	set, _ := newTestWorker(t, false)
	cfg := *set.cfg
	cfg.Flow = flow.Config{MaxFlows: 16}
	obs := make(chan *observation, 1024)
	w := newWorker(&cfg, obs)
	ts := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano()
	hello, err := testcap.ClientHello("ksn-1.kaspersky-labs.com")
	if err != nil {
		t.Fatal(err)
	}
	syns := frames(t, func(tw *testcap.Writer) error {
		for i := range 100 {
			if err := tw.TCPSession(client, web, uint16(20000+i), 443, [][]byte{[]byte("x")}, nil); err != nil {
				return err
			}
		}
		return nil
	})
	n := 0
	for _, f := range syns {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && tcp.SYN && !tcp.ACK {
			w.packet(layers.LinkTypeEthernet, f, ts)
			n++
		}
	}
	if n != 100 || w.flows.Len() != 16 || w.flows.Stats.Evicted != 84 || w.flows.Stats.Refused != 0 {
		t.Fatalf("%d SYNs: %d flows, stats %+v", n, w.flows.Len(), w.flows.Stats)
	}
	fs := frames(t, func(tw *testcap.Writer) error {
		return tw.TCPSession(client, web, 40001, 443, testcap.Segments(hello, 500), nil)
	})
	feed(w, fs, ts+int64(time.Second))
	if w.c.HelloReassembled != 1 || w.c.HelloIncomplete != 0 {
		t.Fatalf("counters %+v", w.c)
	}
}

// quicFloodFrame is a UDP datagram from a random client to port 443
// holding a v1 client Initial of random bytes with a random DCID.
func quicFloodFrame(t *testing.T, r *rand.Rand, sport uint16) []byte {
	t.Helper()
	q := make([]byte, 1200)
	q[0] = 0xc3
	binary.BigEndian.PutUint32(q[1:], 1)
	q[5] = 8
	binary.BigEndian.PutUint16(q[16:], 0x4000|uint16(len(q)-18))
	for i := 6; i < len(q); i++ {
		if i < 14 || i >= 18 {
			q[i] = byte(r.Uint32())
		}
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 1, 0, 5), DstIP: net.IPv4(192, 0, 2, 80)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 443}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(q)); err != nil {
		t.Fatal(err)
	}
	return sb.Bytes()
}

// TestQUICUndecryptableKeepsNoState: Initials that no key opens (a
// flood) leave no QUIC state behind on their flows, and each flow's
// unseen name is counted once however many it sends.
func TestQUICUndecryptableKeepsNoState(t *testing.T) {
	w, _ := newTestWorker(t, false)
	r := rand.New(rand.NewPCG(3, 4))
	ts := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano()
	for i := range 50 {
		f := quicFloodFrame(t, r, uint16(50000+i))
		w.packet(layers.LinkTypeEthernet, f, ts)
		w.packet(layers.LinkTypeEthernet, quicFloodFrame(t, r, uint16(50000+i)), ts) // another, same flow
	}
	if w.quicCount != 0 || w.c.QUICInitials != 100 || w.c.QUICUndecryptable != 100 || w.c.UnseenQUIC[UnseenUndecryptable] != 50 || w.c.UnseenQUIC.Total() != 50 {
		t.Fatalf("%d QUIC states, counters %+v", w.quicCount, w.c)
	}
	if w.quicKeys.Len() != 0 {
		t.Fatalf("%d keys cached for Initials that never opened", w.quicKeys.Len())
	}
	w.finish()
	if w.c.UnseenQUIC.Total() != 50 {
		t.Fatalf("unseen recounted at the end: %+v", w.c.UnseenQUIC)
	}
}
