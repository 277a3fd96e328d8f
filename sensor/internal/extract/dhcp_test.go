package extract

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// dhcpv4 builds a DHCPv4 message with gopacket's encoder.
func dhcpv4(tb testing.TB, op layers.DHCPOp, msg layers.DHCPMsgType, yiaddr string, opts ...layers.DHCPOption) []byte {
	d := &layers.DHCPv4{
		Operation: op, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6, Xid: 0x1234,
		ClientIP: net.IPv4zero, YourClientIP: net.ParseIP(yiaddr).To4(), NextServerIP: net.IPv4zero, RelayAgentIP: net.IPv4zero,
		ClientHWAddr: net.HardwareAddr{0xa4, 0xbb, 0x6d, 0x14, 0x01, 0x0f},
		Options:      append([]layers.DHCPOption{layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(msg)})}, opts...),
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseDHCPv4(t *testing.T) {
	req := dhcpv4(t, layers.DHCPOpRequest, layers.DHCPMsgTypeRequest, "0.0.0.0",
		layers.NewDHCPOption(layers.DHCPOptHostname, []byte("WS-0115")),
		layers.NewDHCPOption(layers.DHCPOptRequestIP, []byte{10, 20, 1, 15}))
	var h DHCPHost
	if _, err := ParseDHCPv4(req, nil, &h); err != nil {
		t.Fatal(err)
	}
	if string(h.Hostname) != "WS-0115" || h.Addr != netip.MustParseAddr("10.20.1.15") || h.MsgType != DHCPRequest || h.MAC != [6]byte{0xa4, 0xbb, 0x6d, 0x14, 0x01, 0x0f} {
		t.Fatalf("request: %+v", h)
	}
	// Client FQDN in wire format (E flag), an ACK's yiaddr.
	ack := dhcpv4(t, layers.DHCPOpReply, layers.DHCPMsgTypeAck, "10.20.1.16",
		layers.NewDHCPOption(81, append([]byte{0x04, 0, 0}, "\x05ws-16\x04corp\x00"...)))
	if _, err := ParseDHCPv4(ack, nil, &h); err != nil || string(h.Hostname) != "ws-16.corp" || h.Addr != netip.MustParseAddr("10.20.1.16") {
		t.Fatalf("ack: %+v %v", h, err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 300), req[:239]} {
		if _, err := ParseDHCPv4(bad, nil, &h); err != ErrNotDHCP {
			t.Errorf("%d bytes: err %v", len(bad), err)
		}
	}
	cut := append([]byte(nil), req[:len(req)-3]...)
	cut = append(cut, 12, 40, 'x') // option longer than what is left
	if _, err := ParseDHCPv4(cut, nil, &h); err != ErrMalformed {
		t.Errorf("cut option: err %v", err)
	}
}

func TestParseDHCPv6(t *testing.T) {
	ia := append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 5, 0, 24)
	ia = append(ia, netip.MustParseAddr("fd00:20::1a").AsSlice()...)
	ia = append(ia, 0, 0, 0, 0, 0, 0, 0, 0)
	fqdn := append([]byte{0}, "\x07lab-v6a\x04corp\x00"...)
	msg := []byte{dhcpv6Reply, 1, 2, 3}
	msg = append(msg, 0, 3, byte(len(ia)>>8), byte(len(ia)))
	msg = append(msg, ia...)
	msg = append(msg, 0, 39, 0, byte(len(fqdn)))
	msg = append(msg, fqdn...)
	var h DHCPHost
	if _, err := ParseDHCPv6(msg, nil, &h); err != nil || string(h.Hostname) != "lab-v6a.corp" || h.Addr != netip.MustParseAddr("fd00:20::1a") {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := ParseDHCPv6(msg[:len(msg)-2], nil, &h); err != ErrMalformed {
		t.Fatalf("cut: %v", err)
	}
}

func FuzzParseDHCP(f *testing.F) {
	f.Add(dhcpv4(f, layers.DHCPOpRequest, layers.DHCPMsgTypeRequest, "0.0.0.0", layers.NewDHCPOption(layers.DHCPOptHostname, []byte("WS"))), true)
	f.Add([]byte{7, 1, 2, 3, 0, 39, 0, 3, 0, 1, 'a'}, false)
	f.Fuzz(func(t *testing.T, p []byte, v4 bool) {
		var h DHCPHost
		var err error
		if v4 {
			_, err = ParseDHCPv4(p, nil, &h)
		} else {
			_, err = ParseDHCPv6(p, nil, &h)
		}
		if err == nil && len(h.Hostname) > 255+len(p) {
			t.Fatalf("hostname of %d bytes from %d", len(h.Hostname), len(p))
		}
	})
}
