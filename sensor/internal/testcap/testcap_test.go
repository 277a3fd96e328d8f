package testcap

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

var start = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// readBack decodes every frame of a capture, checking the file header and
// that no layer failed to decode and every checksum is right.
func readBack(t *testing.T, b []byte) []gopacket.Packet {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", r.LinkType())
	}
	if r.Snaplen() != SnapLen {
		t.Fatalf("snaplen %d", r.Snaplen())
	}
	var out []gopacket.Packet
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			t.Fatalf("capture info %+v for %d bytes", ci, len(data))
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		p.Metadata().CaptureInfo = ci
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("packet %d: decode error: %v", len(out), el.Error())
		}
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			if ip.Checksum != ipv4Checksum(ip.Contents) {
				t.Fatalf("packet %d: bad IPv4 header checksum", len(out))
			}
		}
		switch l := p.TransportLayer().(type) {
		case *layers.TCP:
			if err := l.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
				t.Fatal(err)
			}
			if err, res := l.VerifyChecksum(); err != nil || !res.Valid {
				t.Fatalf("packet %d: TCP checksum: %v %+v", len(out), err, res)
			}
		case *layers.UDP:
			if err := l.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
				t.Fatal(err)
			}
			if err, res := l.VerifyChecksum(); err != nil || !res.Valid {
				t.Fatalf("packet %d: UDP checksum: %v %+v", len(out), err, res)
			}
		}
		out = append(out, p)
	}
	return out
}

func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		if i == 10 {
			continue
		}
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func newWriter(t *testing.T) (*Writer, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, start)
	if err != nil {
		t.Fatal(err)
	}
	return w, &buf
}

var (
	client4 = NewHost("10.20.1.15", 0)
	server4 = NewHost("10.20.0.53", 0)
	client6 = NewHost("fd00:20::1a", 0)
	server6 = NewHost("fd00:20::53", 0)
	web4    = NewHost("198.51.100.3", 0)
	web6    = NewHost("2001:db8:ca5::12", 0)
)

func TestDNSOverUDP(t *testing.T) {
	w, buf := newWriter(t)
	q := Query("ds.kaspersky.com", dns.TypeA, 0x1234)
	resp := Reply(q, CNAME("ds.kaspersky.com", "ds.geo.kaspersky.com", 300), A("ds.geo.kaspersky.com", "198.51.100.20", 60))
	if err := w.DNS(client4, server4, q, resp); err != nil {
		t.Fatal(err)
	}
	if w.Packets() != 2 {
		t.Fatalf("Packets() = %d", w.Packets())
	}
	pkts := readBack(t, buf.Bytes())
	if len(pkts) != 2 {
		t.Fatalf("%d packets, want 2", len(pkts))
	}
	for i, p := range pkts {
		if got, want := p.Metadata().Timestamp, start.Add(time.Duration(i)*DefaultStep); !got.Equal(want) {
			t.Errorf("packet %d at %v, want %v", i, got, want)
		}
		d, ok := p.Layer(layers.LayerTypeDNS).(*layers.DNS)
		if !ok {
			t.Fatalf("packet %d: no DNS layer", i)
		}
		if d.ID != 0x1234 || len(d.Questions) != 1 || string(d.Questions[0].Name) != "ds.kaspersky.com" || d.Questions[0].Type != layers.DNSTypeA {
			t.Fatalf("packet %d: DNS %+v", i, d)
		}
		if d.QR != (i == 1) {
			t.Errorf("packet %d: QR = %v", i, d.QR)
		}
	}
	udpQ := pkts[0].Layer(layers.LayerTypeUDP).(*layers.UDP)
	udpR := pkts[1].Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udpQ.DstPort != 53 || udpQ.SrcPort != FirstEphemeralPort || udpR.SrcPort != 53 || udpR.DstPort != udpQ.SrcPort {
		t.Errorf("ports: query %d->%d, response %d->%d", udpQ.SrcPort, udpQ.DstPort, udpR.SrcPort, udpR.DstPort)
	}
	ip := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip.SrcIP.String() != "10.20.1.15" || ip.DstIP.String() != "10.20.0.53" {
		t.Errorf("query %v -> %v", ip.SrcIP, ip.DstIP)
	}
	eth := pkts[0].Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth.SrcMAC.String() != "02:00:0a:14:01:0f" {
		t.Errorf("derived MAC %v", eth.SrcMAC)
	}
	d := pkts[1].Layer(layers.LayerTypeDNS).(*layers.DNS)
	if len(d.Answers) != 2 || string(d.Answers[0].CNAME) != "ds.geo.kaspersky.com" || d.Answers[1].IP.String() != "198.51.100.20" {
		t.Errorf("answers %+v", d.Answers)
	}
	// The next query takes the next ephemeral port.
	if p := w.EphemeralPort(); p != FirstEphemeralPort+1 {
		t.Errorf("next ephemeral port %d", p)
	}
}

func TestNXDomainAndHostileName(t *testing.T) {
	w, buf := newWriter(t)
	name := "ev\x01il\"\n.example"
	q := Query(name, dns.TypeA, 7)
	if err := w.DNS(client4, server4, q, NXDomain(q, "example")); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	for i, p := range pkts {
		d := p.Layer(layers.LayerTypeDNS).(*layers.DNS)
		if got := string(d.Questions[0].Name); got != name {
			t.Errorf("packet %d: name %q, want %q", i, got, name)
		}
	}
	d := pkts[1].Layer(layers.LayerTypeDNS).(*layers.DNS)
	if d.ResponseCode != layers.DNSResponseCodeNXDomain || len(d.Authorities) != 1 || d.Authorities[0].Type != layers.DNSTypeSOA {
		t.Errorf("NXDOMAIN reply: rcode %v, authorities %+v", d.ResponseCode, d.Authorities)
	}
	// The raw label bytes are on the wire.
	if !bytes.Contains(pkts[0].Data(), []byte("\x07ev\x01il\"\n\x07example\x00")) {
		t.Errorf("hostile label not packed raw")
	}
}

// tcpCheck follows one TCP connection and checks that every segment's
// sequence number continues its direction's stream and every ACK
// acknowledges all the other direction has sent.
func tcpCheck(t *testing.T, pkts []gopacket.Packet) (client, server []byte, flags []string) {
	t.Helper()
	var next [2]uint32
	var started [2]bool
	var cport layers.TCPPort
	for i, p := range pkts {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("packet %d: not TCP", i)
		}
		if i == 0 {
			if !tcp.SYN || tcp.ACK {
				t.Fatalf("first segment is not a SYN")
			}
			cport = tcp.SrcPort
		}
		dir := 0
		if tcp.SrcPort != cport {
			dir = 1
		}
		if !started[dir] {
			if !tcp.SYN {
				t.Fatalf("packet %d: direction %d starts without SYN", i, dir)
			}
			started[dir] = true
			next[dir] = tcp.Seq
		}
		if tcp.Seq != next[dir] {
			t.Fatalf("packet %d: seq %d, want %d", i, tcp.Seq, next[dir])
		}
		if tcp.ACK && tcp.Ack != next[1-dir] {
			t.Fatalf("packet %d: ack %d, want %d", i, tcp.Ack, next[1-dir])
		}
		next[dir] += uint32(len(tcp.Payload))
		if tcp.SYN || tcp.FIN {
			next[dir]++
		}
		if dir == 0 {
			client = append(client, tcp.Payload...)
		} else {
			server = append(server, tcp.Payload...)
		}
		var f string
		for _, x := range []struct {
			on bool
			s  string
		}{{tcp.SYN, "S"}, {tcp.FIN, "F"}, {tcp.PSH, "P"}, {tcp.ACK, "."}} {
			if x.on {
				f += x.s
			}
		}
		flags = append(flags, f)
	}
	return client, server, flags
}

func TestTLSSession(t *testing.T) {
	const name = "dnl-03.geo.kaspersky.com"
	hello, err := ClientHello(name, "h2", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	if hello[0] != 0x16 || hello[5] != 0x01 {
		t.Fatalf("not a handshake record holding a ClientHello: % x", hello[:6])
	}
	if n := int(binary.BigEndian.Uint16(hello[3:5])); n != len(hello)-5 {
		t.Fatalf("record length %d, have %d bytes", n, len(hello)-5)
	}
	// server_name extension: type 0, host_name entry type 0, then the name.
	sni := append([]byte{0x00, byte(len(name) >> 8), byte(len(name))}, name...)
	if !bytes.Contains(hello, sni) {
		t.Fatal("SNI host_name entry not in the hello")
	}
	if !bytes.Contains(hello, []byte("\x02h2\x08http/1.1")) {
		t.Fatal("ALPN list not in the hello")
	}

	w, buf := newWriter(t)
	reply := bytes.Repeat([]byte{0x17}, 3000) // three server segments
	if err := w.TCPSession(client4, web4, 0, 443, Segments(hello, 1000), reply); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	c, s, flags := tcpCheck(t, pkts)
	if !bytes.Equal(c, hello) || !bytes.Equal(s, reply) {
		t.Fatalf("streams: client %d bytes, server %d bytes", len(c), len(s))
	}
	want := "S S. . P. P. P. P. P. . F. F. ."
	if got := strings.Join(flags, " "); got != want {
		t.Errorf("flags %q, want %q", got, want)
	}
	first := pkts[3].Layer(layers.LayerTypeTCP).(*layers.TCP)
	if first.Payload[0] != 0x16 || first.DstPort != 443 {
		t.Errorf("first data segment: % x to port %d", first.Payload[:1], first.DstPort)
	}
	for i, p := range pkts[6:8] {
		if n := len(p.Layer(layers.LayerTypeTCP).(*layers.TCP).Payload); n > MSS4 {
			t.Errorf("server segment %d is %d bytes", i, n)
		}
	}
}

func TestClientHelloConfig(t *testing.T) {
	h, err := ClientHelloConfig(&tls.Config{ServerName: "s12.upd.kaspersky.com", CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) > MSS6 || h[0] != 0x16 || !bytes.Contains(h, []byte("s12.upd.kaspersky.com")) {
		t.Fatalf("classical hello: %d bytes", len(h))
	}
	h, err = ClientHello("")
	if err != nil {
		t.Fatal(err)
	}
	if h[0] != 0x16 {
		t.Fatalf("hello without SNI: % x", h[:1])
	}
}

func TestNoServerReply(t *testing.T) {
	w, buf := newWriter(t)
	req := HTTPRequest("", "example.org", "", "curl/8.11.1")
	if err := w.TCPSession(client4, web4, 40000, 80, [][]byte{req, nil}, nil); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	c, s, flags := tcpCheck(t, pkts)
	if string(c) != "GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.11.1\r\nAccept: */*\r\nConnection: close\r\n\r\n" || len(s) != 0 {
		t.Fatalf("client %q server %q", c, s)
	}
	if got := strings.Join(flags, " "); got != "S S. . P. . F. F. ." {
		t.Errorf("flags %q", got)
	}
	if sp := pkts[0].Layer(layers.LayerTypeTCP).(*layers.TCP).SrcPort; sp != 40000 {
		t.Errorf("source port %d", sp)
	}
}

func TestVLAN(t *testing.T) {
	w, buf := newWriter(t)
	tagged := NewHost("10.20.7.42", 120)
	if err := w.DNS(tagged, server4, Query("example.org", dns.TypeA, 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.TCPSession(server4, tagged, 0, 8080, [][]byte{[]byte("x")}, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := w.DNS(client4, server4, Query("example.org", dns.TypeA, 2), nil); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	for i, p := range pkts[:len(pkts)-1] {
		q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		if !ok || q.VLANIdentifier != 120 {
			t.Fatalf("packet %d: no VLAN 120 tag", i)
		}
		if p.NetworkLayer() == nil || p.TransportLayer() == nil {
			t.Fatalf("packet %d: layers under the tag not decoded", i)
		}
	}
	if p := pkts[len(pkts)-1]; p.Layer(layers.LayerTypeDot1Q) != nil {
		t.Fatal("untagged host got a VLAN tag")
	}
	if err := w.DNS(NewHost("10.0.0.1", 4095), server4, Query("x", dns.TypeA, 1), nil); err == nil {
		t.Fatal("VLAN 4095 accepted")
	}
}

func TestIPv6(t *testing.T) {
	w, buf := newWriter(t)
	q := Query("s12.upd.kaspersky.com", dns.TypeAAAA, 99)
	if err := w.DNS(client6, server6, q, Reply(q, A("s12.upd.kaspersky.com", "2001:db8:ca5::12", 120))); err != nil {
		t.Fatal(err)
	}
	hello, err := ClientHello("s12.upd.kaspersky.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.TCPSession(client6, web6, 0, 443, [][]byte{hello}, nil); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	for i, p := range pkts {
		ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			t.Fatalf("packet %d: not IPv6", i)
		}
		if ip.HopLimit != 64 {
			t.Errorf("packet %d: hop limit %d", i, ip.HopLimit)
		}
	}
	d := pkts[1].Layer(layers.LayerTypeDNS).(*layers.DNS)
	if len(d.Answers) != 1 || d.Answers[0].Type != layers.DNSTypeAAAA || d.Answers[0].IP.String() != "2001:db8:ca5::12" {
		t.Errorf("AAAA answer %+v", d.Answers)
	}
	c, _, _ := tcpCheck(t, pkts[2:])
	if !bytes.Equal(c, hello) {
		t.Error("IPv6 client stream is not the hello")
	}
	syn := pkts[2].Layer(layers.LayerTypeTCP).(*layers.TCP)
	if syn.Options[0].OptionType != layers.TCPOptionKindMSS || binary.BigEndian.Uint16(syn.Options[0].OptionData) != MSS6 {
		t.Errorf("SYN options %v", syn.Options)
	}
	if err := w.DNS(client4, server6, q, nil); !errors.Is(err, errFamily) {
		t.Errorf("mixed families: %v", err)
	}
}

func TestDNSTCP(t *testing.T) {
	w, buf := newWriter(t)
	q := Query("_ldap._tcp.dc._msdcs.corp.acme.example", dns.TypeSRV, 0xbeef)
	var rrs []dns.RR
	for i := range 60 {
		rrs = append(rrs, SRV(q.Question[0].Name, 600, 0, 100, 389, "dc"+string(rune('a'+i%26))+string(rune('a'+i/26))+".corp.acme.example"))
	}
	resp := Reply(q, rrs...)
	if err := w.DNSTCP(client4, server4, q, resp); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	c, s, _ := tcpCheck(t, pkts)
	if pkts[0].Layer(layers.LayerTypeTCP).(*layers.TCP).DstPort != 53 {
		t.Fatal("not to port 53")
	}
	for _, st := range []struct {
		b        []byte
		response bool
	}{{c, false}, {s, true}} {
		n := int(binary.BigEndian.Uint16(st.b))
		if n != len(st.b)-2 {
			t.Fatalf("length prefix %d, stream %d", n, len(st.b))
		}
		var m dns.Msg
		if err := m.Unpack(st.b[2:]); err != nil {
			t.Fatal(err)
		}
		if m.Response != st.response || m.Id != 0xbeef {
			t.Errorf("message %+v", m.MsgHdr)
		}
		if st.response && len(m.Answer) != 60 {
			t.Errorf("%d answers", len(m.Answer))
		}
	}
	if len(s) <= MSS4 {
		t.Fatalf("response of %d bytes does not test segmentation", len(s))
	}
}

func TestDeterministic(t *testing.T) {
	gen := func() []byte {
		w, buf := newWriter(t)
		w.SetStep(250 * time.Microsecond)
		q := Query("github.com", dns.TypeA, 3)
		if err := w.DNS(client4, server4, q, Reply(q, A("github.com", "203.0.113.4", 60))); err != nil {
			t.Fatal(err)
		}
		w.Advance(time.Minute)
		if err := w.TCPSession(client4, web4, 0, 80, [][]byte{HTTPRequest("GET", "github.com", "/", "")}, HTTPResponse(301, "text/html", "moved")); err != nil {
			t.Fatal(err)
		}
		if want := start.Add(time.Minute + time.Duration(w.Packets())*250*time.Microsecond); !w.Now().Equal(want) {
			t.Errorf("clock %v, want %v", w.Now(), want)
		}
		return buf.Bytes()
	}
	if a, b := gen(), gen(); !bytes.Equal(a, b) {
		t.Fatal("same input, different captures")
	}
}

func TestFrameAndHelpers(t *testing.T) {
	w, buf := newWriter(t)
	raw := make([]byte, 60)
	if err := w.Frame(raw); err != nil {
		t.Fatal(err)
	}
	pkts := readBack(t, buf.Bytes())
	if len(pkts) != 1 || !bytes.Equal(pkts[0].Data(), raw) {
		t.Fatal("raw frame not written as is")
	}
	if got := string(HTTPResponse(404, "", "")); got != "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" {
		t.Errorf("HTTPResponse %q", got)
	}
	if got := string(HTTPRequest("POST", "h", "/x", "")); strings.Contains(got, "User-Agent") || !strings.HasPrefix(got, "POST /x HTTP/1.1\r\nHost: h\r\n") {
		t.Errorf("HTTPRequest %q", got)
	}
	segs := Segments([]byte("abcdefg"), 3)
	if len(segs) != 3 || string(segs[2]) != "g" || cap(segs[0]) != 3 {
		t.Errorf("Segments %q", segs)
	}
	if Segments(nil, 3) != nil || len(Segments([]byte("ab"), 0)) != 1 {
		t.Error("Segments edge cases")
	}
	if rr := A("x", "::1", 1); rr.Header().Rrtype != dns.TypeAAAA {
		t.Error("A for an IPv6 literal is not AAAA")
	}
	if h := NewHost("192.0.2.1", 0); h.IP != netip.MustParseAddr("192.0.2.1") {
		t.Error("NewHost")
	}
	w.port = LastEphemeralPort
	if a, b := w.EphemeralPort(), w.EphemeralPort(); a != LastEphemeralPort || b != FirstEphemeralPort {
		t.Errorf("wrap: %d then %d", a, b)
	}
}
