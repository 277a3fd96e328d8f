package decode

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	mac1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// l4 returns serialisable IP + TCP/UDP layers carrying payload.
func l4(t testing.TB, src, dst string, tcp bool, payload []byte) []gopacket.SerializableLayer {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	var ip gopacket.NetworkLayer
	var out []gopacket.SerializableLayer
	if s.Is4() {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, SrcIP: s.AsSlice(), DstIP: d.AsSlice(), Protocol: layers.IPProtocolUDP}
		if tcp {
			ip4.Protocol = layers.IPProtocolTCP
		}
		ip, out = ip4, append(out, ip4)
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: s.AsSlice(), DstIP: d.AsSlice(), NextHeader: layers.IPProtocolUDP}
		if tcp {
			ip6.NextHeader = layers.IPProtocolTCP
		}
		ip, out = ip6, append(out, ip6)
	}
	if tcp {
		tl := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1000, SYN: false, ACK: true, PSH: true, Window: 1024}
		_ = tl.SetNetworkLayerForChecksum(ip)
		out = append(out, tl)
	} else {
		ul := &layers.UDP{SrcPort: 40000, DstPort: 53}
		_ = ul.SetNetworkLayerForChecksum(ip)
		out = append(out, ul)
	}
	return append(out, gopacket.Payload(payload))
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ethType(src, dst string) layers.EthernetType {
	if netip.MustParseAddr(src).Is4() {
		return layers.EthernetTypeIPv4
	}
	return layers.EthernetTypeIPv6
}

func TestDecodeLinkTypes(t *testing.T) {
	payload := []byte("hello")
	type tc struct {
		name  string
		lt    layers.LinkType
		frame func(t testing.TB, src, dst string, tcp bool) []byte
		mac   bool
	}
	cases := []tc{
		{"ethernet", layers.LinkTypeEthernet, func(t testing.TB, s, d string, tcp bool) []byte {
			return serialize(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: ethType(s, d)}}, l4(t, s, d, tcp, payload)...)...)
		}, true},
		{"802.1Q", layers.LinkTypeEthernet, func(t testing.TB, s, d string, tcp bool) []byte {
			return serialize(t, append([]gopacket.SerializableLayer{
				&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 120, Type: ethType(s, d)}}, l4(t, s, d, tcp, payload)...)...)
		}, true},
		{"QinQ", layers.LinkTypeEthernet, func(t testing.TB, s, d string, tcp bool) []byte {
			return serialize(t, append([]gopacket.SerializableLayer{
				&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeQinQ},
				&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 20, Type: ethType(s, d)}}, l4(t, s, d, tcp, payload)...)...)
		}, true},
		{"linux SLL", layers.LinkTypeLinuxSLL, func(t testing.TB, s, d string, tcp bool) []byte {
			ip := serialize(t, l4(t, s, d, tcp, payload)...)
			h := make([]byte, 16)
			binary.BigEndian.PutUint16(h[2:], 1)
			binary.BigEndian.PutUint16(h[4:], 6)
			copy(h[6:], mac1)
			binary.BigEndian.PutUint16(h[14:], uint16(ethType(s, d)))
			return append(h, ip...)
		}, false},
		{"linux SLL2", layers.LinkTypeLinuxSLL2, func(t testing.TB, s, d string, tcp bool) []byte {
			ip := serialize(t, l4(t, s, d, tcp, payload)...)
			h := make([]byte, 20)
			binary.BigEndian.PutUint16(h[0:], uint16(ethType(s, d)))
			binary.BigEndian.PutUint32(h[4:], 2)
			binary.BigEndian.PutUint16(h[8:], 1)
			h[11] = 6
			copy(h[12:], mac1)
			return append(h, ip...)
		}, false},
		{"BSD null", layers.LinkTypeNull, func(t testing.TB, s, d string, tcp bool) []byte {
			ip := serialize(t, l4(t, s, d, tcp, payload)...)
			fam := uint32(2)
			if !netip.MustParseAddr(s).Is4() {
				fam = 30
			}
			h := make([]byte, 4)
			binary.LittleEndian.PutUint32(h, fam)
			return append(h, ip...)
		}, false},
		{"raw IP", layers.LinkTypeRaw, func(t testing.TB, s, d string, tcp bool) []byte {
			return serialize(t, l4(t, s, d, tcp, payload)...)
		}, false},
		{"PPPoE", layers.LinkTypeEthernet, func(t testing.TB, s, d string, tcp bool) []byte {
			ip := serialize(t, l4(t, s, d, tcp, payload)...)
			h := []byte{0x11, 0, 0, 1, 0, 0, 0, 0x21}
			if !netip.MustParseAddr(s).Is4() {
				h[7] = 0x57
			}
			binary.BigEndian.PutUint16(h[4:], uint16(len(ip)+2))
			// Built by hand: gopacket pads a lone Ethernet header to 60 bytes.
			eth := append(append(append([]byte{}, mac2...), mac1...), 0x88, 0x64)
			return append(append(eth, h...), ip...)
		}, true},
	}
	addrs := [][2]string{{"10.1.2.3", "93.184.216.34"}, {"fd00::1", "2001:db8::2"}}
	for _, c := range cases {
		for _, a := range addrs {
			for _, tcp := range []bool{true, false} {
				name := c.name + "/" + a[0]
				if tcp {
					name += "/tcp"
				} else {
					name += "/udp"
				}
				t.Run(name, func(t *testing.T) {
					d := New()
					var p Packet
					frame := c.frame(t, a[0], a[1], tcp)
					if err := d.Decode(c.lt, frame, &p); err != nil {
						t.Fatalf("Decode: %v (stats %+v)", err, d.Stats)
					}
					if p.Src != netip.MustParseAddr(a[0]) || p.Dst != netip.MustParseAddr(a[1]) {
						t.Errorf("addresses: got %v → %v", p.Src, p.Dst)
					}
					wantProto := uint8(ProtoUDP)
					if tcp {
						wantProto = ProtoTCP
					}
					if p.Proto != wantProto || p.SrcPort != 40000 {
						t.Errorf("proto %d sport %d", p.Proto, p.SrcPort)
					}
					if string(p.Payload) != "hello" {
						t.Errorf("payload %q", p.Payload)
					}
					if p.HasMAC != c.mac || (c.mac && net.HardwareAddr(p.SrcMAC[:]).String() != mac1.String()) {
						t.Errorf("mac %v %v", p.HasMAC, p.SrcMAC)
					}
					if FlowHash(c.lt, frame) == 0 {
						t.Errorf("FlowHash = 0: the header walk failed")
					}
				})
			}
		}
	}
}

func udpFrame(t testing.TB, src, dst net.IP, sp, dp layers.UDPPort) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolUDP}
	u := &layers.UDP{SrcPort: sp, DstPort: dp}
	_ = u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload("x"))
}

func TestFlowHashSymmetric(t *testing.T) {
	fwd := udpFrame(t, net.IP{10, 0, 0, 1}, net.IP{1, 2, 3, 4}, 5000, 53)
	rev := udpFrame(t, net.IP{1, 2, 3, 4}, net.IP{10, 0, 0, 1}, 53, 5000)
	other := udpFrame(t, net.IP{1, 2, 3, 4}, net.IP{10, 0, 0, 1}, 53, 5001)
	a, b, c := FlowHash(layers.LinkTypeEthernet, fwd), FlowHash(layers.LinkTypeEthernet, rev), FlowHash(layers.LinkTypeEthernet, other)
	if a != b {
		t.Errorf("not symmetric: %#x vs %#x", a, b)
	}
	if a == c {
		t.Errorf("different flows hash alike: %#x", a)
	}
}

func TestDecodeErrorsCounted(t *testing.T) {
	d := New()
	var p Packet
	good := serialize(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}}, l4(t, "10.0.0.1", "10.0.0.2", true, []byte("x"))...)...)
	cases := []struct {
		name  string
		lt    layers.LinkType
		frame []byte
		check func(s *Stats) bool
	}{
		{"short ethernet", layers.LinkTypeEthernet, good[:10], func(s *Stats) bool { return s.Errors[LayerLink] == 1 }},
		{"cut IPv4 header", layers.LinkTypeEthernet, good[:14+12], func(s *Stats) bool { return s.Errors[LayerIPv4] == 1 }},
		{"cut TCP header", layers.LinkTypeEthernet, good[:14+20+10], func(s *Stats) bool { return s.Errors[LayerTCP] == 1 }},
		{"unknown link type", layers.LinkType(147), good, func(s *Stats) bool { return s.UnknownLink == 1 }},
		{"ARP", layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				SourceHwAddress: mac1, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: mac2, DstProtAddress: []byte{10, 0, 0, 2}}),
			func(s *Stats) bool { return s.NotIP == 1 }},
		{"ICMP", layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}, Protocol: layers.IPProtocolICMPv4},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), func(s *Stats) bool { return s.NotTCPUDP == 1 }},
		{"IPv4 fragment", layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}, Protocol: layers.IPProtocolUDP, FragOffset: 100},
			gopacket.Payload("fragment")), func(s *Stats) bool { return s.Fragments == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.Stats = Stats{}
			if err := d.Decode(c.lt, c.frame, &p); err != ErrSkip {
				t.Fatalf("Decode = %v, want ErrSkip", err)
			}
			if !c.check(&d.Stats) {
				t.Errorf("stats %+v", d.Stats)
			}
		})
	}
}

func BenchmarkDecodeTCP(b *testing.B) {
	frame := serialize(b, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}}, l4(b, "10.0.0.1", "10.0.0.2", true, make([]byte, 1200))...)...)
	d := New()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := d.Decode(layers.LinkTypeEthernet, frame, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFlowHash(b *testing.B) {
	frame := serialize(b, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}}, l4(b, "10.0.0.1", "10.0.0.2", true, make([]byte, 1200))...)...)
	b.ReportAllocs()
	for b.Loop() {
		FlowHash(layers.LinkTypeEthernet, frame)
	}
}
