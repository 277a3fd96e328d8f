package decode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/defrag"
)

// dnsResponse returns a packed DNS response of about n bytes: TXT
// padding, as in the captures this is meant for.
func dnsResponse(t testing.TB, n int) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("big.example.", dns.TypeTXT)
	m.Response = true
	var txt []string
	for n > 0 {
		txt = append(txt, strings.Repeat(string(rune('a'+len(txt)%26)), min(n, 250)))
		n -= 251
	}
	m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: txt})
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// transport returns the serialised UDP (or TCP) header and payload of a
// packet from src to dst, with a valid checksum.
func transport(t testing.TB, src, dst string, tcp bool, payload []byte) []byte {
	t.Helper()
	b := serialize(t, l4(t, src, dst, tcp, payload)...)
	if netip.MustParseAddr(src).Is4() {
		return b[20:]
	}
	return b[40:]
}

// fragments cuts a transport datagram into IP fragments of at most size
// bytes of data (a multiple of 8), each an Ethernet frame. ext names IPv6
// extension headers (0, 43, 60) to put before the Fragment header.
func fragments(t testing.TB, src, dst string, tcp bool, dg []byte, size int, id uint32, ext ...uint8) [][]byte {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	proto := layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	var out [][]byte
	for off := 0; off < len(dg); off += size {
		chunk := dg[off:min(off+size, len(dg))]
		more := off+size < len(dg)
		eth := &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: ethType(src, dst)}
		if s.Is4() {
			ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: s.AsSlice(), DstIP: d.AsSlice(), Protocol: proto,
				Id: uint16(id), FragOffset: uint16(off / 8)}
			if more {
				ip.Flags = layers.IPv4MoreFragments
			}
			out = append(out, serialize(t, eth, ip, gopacket.Payload(chunk)))
			continue
		}
		// IPv6 by hand, for the extension headers
		types := append(slices.Clone(ext), 44)
		var hdr []byte
		for i := range ext {
			hdr = append(hdr, types[i+1], 0, 1, 4, 0, 0, 0, 0) // 8 bytes: PadN
		}
		fh := make([]byte, 8)
		fh[0] = uint8(proto)
		binary.BigEndian.PutUint16(fh[2:], uint16(off/8)<<3)
		if more {
			fh[3] |= 1
		}
		binary.BigEndian.PutUint32(fh[4:], id)
		hdr = append(hdr, fh...)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(hdr)+len(chunk)))
		ip[6], ip[7] = types[0], 64
		copy(ip[8:], s.AsSlice())
		copy(ip[24:], d.AsSlice())
		frame := serialize(t, eth)[:14] // gopacket pads a lone Ethernet header
		frame = append(append(append(frame, ip...), hdr...), chunk...)
		out = append(out, frame)
	}
	return out
}

func TestDecodeAtReassembles(t *testing.T) {
	msg := dnsResponse(t, 3500)
	type tc struct {
		name     string
		src, dst string
		ext      []uint8
		order    []int // indexes into the 3 fragments
	}
	var cases []tc
	orders := map[string][]int{"in order": {0, 1, 2}, "reverse": {2, 1, 0}, "shuffled": {1, 2, 0}}
	for oname, order := range orders {
		cases = append(cases,
			tc{"IPv4/" + oname, "93.184.216.34", "10.1.2.3", nil, order},
			tc{"IPv6/" + oname, "2001:db8::53", "fd00::1", nil, order},
			tc{"IPv6 hop-by-hop/" + oname, "2001:db8::53", "fd00::1", []uint8{0}, order},
			tc{"IPv6 dest options/" + oname, "2001:db8::53", "fd00::1", []uint8{60}, order},
			tc{"IPv6 hop-by-hop routing/" + oname, "2001:db8::53", "fd00::1", []uint8{0, 43}, order})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dg := transport(t, c.src, c.dst, false, msg)
			frames := fragments(t, c.src, c.dst, false, dg, 1232, 0xbeef, c.ext...)
			if len(frames) != 3 {
				t.Fatalf("%d fragments", len(frames))
			}
			d := New()
			var p Packet
			for n, i := range c.order {
				err := d.DecodeAt(layers.LinkTypeEthernet, frames[i], int64(n)*int64(time.Millisecond), &p)
				if n < len(c.order)-1 {
					if !errors.Is(err, ErrSkip) || p.Reassembled {
						t.Fatalf("fragment %d: err %v, reassembled %v", i, err, p.Reassembled)
					}
					continue
				}
				if err != nil {
					t.Fatalf("last fragment: %v (stats %+v)", err, d.Stats)
				}
			}
			if !p.Reassembled || p.Proto != ProtoUDP || p.SrcPort != 40000 || p.DstPort != 53 ||
				p.Src != netip.MustParseAddr(c.src) || p.Dst != netip.MustParseAddr(c.dst) || !p.HasMAC {
				t.Errorf("packet %+v", p)
			}
			if !bytes.Equal(p.Payload, msg) {
				t.Fatalf("payload of %d bytes, want %d", len(p.Payload), len(msg))
			}
			var m dns.Msg
			if err := m.Unpack(p.Payload); err != nil || len(m.Answer) != 1 {
				t.Errorf("DNS: %v, %d answers", err, len(m.Answer))
			}
			s := d.Stats
			if s.Packets != 3 || s.Fragments != 3 || s.Decoded != 1 || s.Defrag.Reassembled != 1 || s.Defrag.Fragments != 3 || s.Defrag.InProgress != 0 {
				t.Errorf("stats %+v", s)
			}
			// the next packet is not marked reassembled
			whole := serialize(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: ethType(c.src, c.dst)}},
				l4(t, c.src, c.dst, false, []byte("x"))...)...)
			if err := d.DecodeAt(layers.LinkTypeEthernet, whole, 0, &p); err != nil || p.Reassembled {
				t.Errorf("whole packet after: err %v, reassembled %v", err, p.Reassembled)
			}
		})
	}
}

func TestDecodeAtReassemblesTCP(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 200)
	dg := transport(t, "10.0.0.1", "10.0.0.2", true, payload)
	frames := fragments(t, "10.0.0.1", "10.0.0.2", true, dg, 1480, 7)
	d := New()
	var p Packet
	if err := d.DecodeAt(layers.LinkTypeEthernet, frames[1], 1, &p); !errors.Is(err, ErrSkip) {
		t.Fatalf("second fragment: %v", err)
	}
	if err := d.DecodeAt(layers.LinkTypeEthernet, frames[0], 2, &p); err != nil {
		t.Fatalf("first fragment: %v", err)
	}
	if !p.Reassembled || p.Proto != ProtoTCP || p.Seq != 1000 || p.TCPFlags != FlagACK|FlagPSH || p.SrcPort != 40000 || p.DstPort != 443 ||
		!bytes.Equal(p.Payload, payload) {
		t.Errorf("packet: reassembled %v proto %d seq %d flags %#x ports %d→%d, %d payload bytes",
			p.Reassembled, p.Proto, p.Seq, p.TCPFlags, p.SrcPort, p.DstPort, len(p.Payload))
	}
}

func TestDecodeAtFragmentsSkipped(t *testing.T) {
	dg := transport(t, "10.0.0.1", "10.0.0.2", false, make([]byte, 3000))
	t.Run("truncated", func(t *testing.T) {
		d := New()
		var p Packet
		frames := fragments(t, "10.0.0.1", "10.0.0.2", false, dg, 1480, 1)
		for i, f := range frames {
			if i == 1 {
				f = f[:len(f)-100] // cut by the snap length
			}
			if err := d.DecodeAt(layers.LinkTypeEthernet, f, 0, &p); !errors.Is(err, ErrSkip) {
				t.Fatalf("fragment %d: %v", i, err)
			}
		}
		if s := d.Stats; s.Fragments != 3 || s.SnapTruncate != 1 || s.Defrag.Fragments != 2 || s.Defrag.InProgress != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("ICMP", func(t *testing.T) {
		d := New()
		var p Packet
		f := serialize(t, &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}, Protocol: layers.IPProtocolICMPv4,
				Flags: layers.IPv4MoreFragments}, gopacket.Payload(make([]byte, 1480)))
		if err := d.DecodeAt(layers.LinkTypeEthernet, f, 0, &p); !errors.Is(err, ErrSkip) {
			t.Fatal(err)
		}
		if s := d.Stats; s.Fragments != 1 || s.Defrag.Fragments != 0 || d.defrag != nil {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		d := NewWithConfig(defrag.Config{Timeout: 5 * time.Second})
		var p Packet
		frames := fragments(t, "10.0.0.1", "10.0.0.2", false, dg, 1480, 2)
		sec := int64(time.Second)
		d.DecodeAt(layers.LinkTypeEthernet, frames[0], 100*sec, &p)
		d.DecodeAt(layers.LinkTypeEthernet, frames[1], 101*sec, &p)
		// an unfragmented packet later expires the datagram
		whole := serialize(t, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}},
			l4(t, "10.0.0.3", "10.0.0.4", false, []byte("x"))...)...)
		if err := d.DecodeAt(layers.LinkTypeEthernet, whole, 106*sec, &p); err != nil {
			t.Fatal(err)
		}
		if err := d.DecodeAt(layers.LinkTypeEthernet, frames[2], 106*sec, &p); !errors.Is(err, ErrSkip) {
			t.Fatalf("completed after the timeout: %v", err)
		}
		if s := d.Stats.Defrag; s.Timeouts != 1 || s.InProgress != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// expectedFile is the part of EXPECTED.json the capture test reads.
type expectedFile struct {
	File   string `json:"file"`
	Tshark struct {
		DNS []struct {
			Client  string   `json:"client"`
			Server  string   `json:"server"`
			Qname   string   `json:"qname"`
			Qtype   string   `json:"qtype"`
			Rcode   *string  `json:"rcode"`
			Answers []string `json:"answers"`
			Frames  []int    `json:"frames"`
		} `json:"dns"`
	} `json:"tshark"`
}

// answerText writes an answer as EXPECTED.json does (tshark's view): the
// type, and the data of A, AAAA and TXT records.
func answerText(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return "A " + rr.A.String()
	case *dns.AAAA:
		return "AAAA " + rr.AAAA.String()
	case *dns.TXT:
		return "TXT " + strings.Join(rr.Txt, " ")
	}
	return dns.TypeToString[rr.Header().Rrtype]
}

// TestDecodeAtCaptures reassembles the fragmented DNS responses of two
// public captures and checks them against tshark's reading in
// EXPECTED.json.
func TestDecodeAtCaptures(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "..", "shared", "testdata", "pcaps")
	raw, err := os.ReadFile(filepath.Join(dir, "EXPECTED.json"))
	if err != nil {
		t.Skipf("no capture corpus (%v): it lives in /work/shared/testdata/pcaps", err)
	}
	var exp struct{ Files []expectedFile }
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file        string
		reassembled []int // frames that complete a datagram
		inProgress  int   // datagrams left incomplete
	}{
		// IPv4 pairs (3, 12, 17, 42) and IPv6 pairs (6, 9, 39)
		{"nDPI/dns_fragmented.pcap", []int{3, 6, 9, 12, 17, 39, 42}, 0},
		// frames 6-8 are one datagram; frame 4 is the last fragment of
		// another whose first ones were not captured
		{"zeek/ipv6-fragmented-dns.pcap", []int{8}, 1},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			i := slices.IndexFunc(exp.Files, func(f expectedFile) bool { return f.File == c.file })
			if i < 0 {
				t.Fatalf("%s not in EXPECTED.json", c.file)
			}
			want := exp.Files[i].Tshark.DNS
			f, err := os.Open(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			d := New()
			var p Packet
			got := map[int]*dns.Msg{}
			var frames []int
			for n := 1; ; n++ {
				data, ci, err := r.ReadPacketData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.DecodeAt(r.LinkType(), data, ci.Timestamp.UnixNano(), &p) != nil || !p.Reassembled {
					continue
				}
				frames = append(frames, n)
				if p.Proto != ProtoUDP || p.SrcPort != 53 {
					t.Errorf("frame %d: proto %d port %d", n, p.Proto, p.SrcPort)
				}
				m := new(dns.Msg)
				if err := m.Unpack(p.Payload); err != nil {
					t.Errorf("frame %d: %d bytes, not DNS: %v", n, len(p.Payload), err)
					continue
				}
				if !m.Response {
					t.Errorf("frame %d: not a response", n)
				}
				got[n] = m
				// the response goes from tshark's server to its client
				for _, w := range want {
					if len(w.Frames) == 2 && w.Frames[1] == n && (p.Src.String() != w.Server || p.Dst.String() != w.Client) {
						t.Errorf("frame %d: %v → %v, want %s → %s", n, p.Src, p.Dst, w.Server, w.Client)
					}
				}
			}
			if !slices.Equal(frames, c.reassembled) {
				t.Errorf("reassembled in frames %v, want %v", frames, c.reassembled)
			}
			checked := 0
			for _, w := range want {
				if len(w.Frames) != 2 {
					continue
				}
				m := got[w.Frames[1]]
				if m == nil {
					continue // not a fragmented response
				}
				checked++
				q := m.Question[0]
				if name := strings.TrimSuffix(q.Name, "."); name != w.Qname || dns.TypeToString[q.Qtype] != w.Qtype ||
					w.Rcode == nil || dns.RcodeToString[m.Rcode] != *w.Rcode {
					t.Errorf("frame %d: %s %s %s, want %s %s %v", w.Frames[1], name, dns.TypeToString[q.Qtype], dns.RcodeToString[m.Rcode], w.Qname, w.Qtype, w.Rcode)
				}
				var answers []string
				for _, rr := range m.Answer {
					answers = append(answers, answerText(rr))
				}
				if !slices.Equal(answers, w.Answers) {
					t.Errorf("frame %d (%s): answers %.200q, want %.200q", w.Frames[1], w.Qname, answers, w.Answers)
				}
			}
			if checked != len(c.reassembled) {
				t.Errorf("%d reassembled responses matched in EXPECTED.json, want %d", checked, len(c.reassembled))
			}
			s := d.Stats.Defrag
			if s.Reassembled != uint64(len(c.reassembled)) || s.InProgress != c.inProgress || s.Invalid != 0 || s.Overlaps != 0 {
				t.Errorf("defrag stats %+v", s)
			}
			t.Logf("%d frames with fragments; defrag %+v", d.Stats.Fragments, s)
		})
	}
	// the two answers the sensor most needs from nDPI's capture
	d := New()
	f, err := os.Open(filepath.Join(dir, "nDPI/dns_fragmented.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	seen := map[string]bool{}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if d.DecodeAt(r.LinkType(), data, ci.Timestamp.UnixNano(), &p) != nil || !p.Reassembled {
			continue
		}
		var m dns.Msg
		if m.Unpack(p.Payload) != nil {
			continue
		}
		for _, rr := range m.Answer {
			seen[p.Dst.String()+" "+m.Question[0].Name+" "+answerText(rr)] = true
		}
	}
	for _, w := range []string{
		"173.194.169.104 fg2.weberlab.de. A 194.247.4.10",
		"2a00:1450:4013:c03::10a pa.weberlab.de. AAAA 2001:470:1f0b:1024::2",
	} {
		if !seen[w] {
			t.Errorf("missing %q", w)
		}
	}
}

// BenchmarkDecodeAtTCP is BenchmarkDecodeTCP through DecodeAt: the cost of
// a packet that is no fragment.
func BenchmarkDecodeAtTCP(b *testing.B) {
	frame := serialize(b, append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}}, l4(b, "10.0.0.1", "10.0.0.2", true, make([]byte, 1200))...)...)
	d := New()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	var ts int64
	for b.Loop() {
		ts++
		if err := d.DecodeAt(layers.LinkTypeEthernet, frame, ts, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAtFragments decodes a UDP datagram in two IPv4
// fragments, a large DNS response's shape; one op is both frames.
func BenchmarkDecodeAtFragments(b *testing.B) {
	dg := transport(b, "10.0.0.1", "10.0.0.2", false, make([]byte, 1700))
	frames := fragments(b, "10.0.0.1", "10.0.0.2", false, dg, 1480, 1)
	d := New()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0]) + len(frames[1])))
	var ts int64
	for b.Loop() {
		ts++
		d.DecodeAt(layers.LinkTypeEthernet, frames[0], ts, &p)
		if err := d.DecodeAt(layers.LinkTypeEthernet, frames[1], ts, &p); err != nil || !p.Reassembled {
			b.Fatal(err)
		}
	}
}
