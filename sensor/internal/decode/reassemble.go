package decode

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/phonehome-sensor/phonehome/sensor/internal/defrag"
)

// IPv6 extension headers walked by hand (RFC 8200 section 4).
const (
	ipProtoHopByHop = 0
	ipProtoRouting  = 43
	ipProtoFragment = 44
	ipProtoDestOpts = 60
)

// fillTCP sets p from the decoded TCP header.
func (d *Decoder) fillTCP(p *Packet) {
	t := &d.tcp
	p.Proto = ProtoTCP
	p.SrcPort, p.DstPort = uint16(t.SrcPort), uint16(t.DstPort)
	p.Seq = t.Seq
	var f uint8
	if t.FIN {
		f |= FlagFIN
	}
	if t.SYN {
		f |= FlagSYN
	}
	if t.RST {
		f |= FlagRST
	}
	if t.PSH {
		f |= FlagPSH
	}
	if t.ACK {
		f |= FlagACK
	}
	p.TCPFlags = f
	p.Payload = t.Payload
}

// fillUDP sets p from the decoded UDP header.
func (d *Decoder) fillUDP(p *Packet) {
	p.Proto = ProtoUDP
	p.SrcPort, p.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	p.TCPFlags = 0
	p.Payload = d.udp.Payload
}

// reassemble hands the fragment in d.ip4 (v6 false) or d.frag6 to the
// reassembly table and, when it completes its datagram, decodes the
// datagram's TCP or UDP header into p. p.Src and p.Dst are already the
// fragment's addresses.
func (d *Decoder) reassemble(v6 bool, ts int64, p *Packet) error {
	var (
		k     defrag.Key
		off   int
		more  bool
		frag  []byte
		proto uint8
	)
	if v6 {
		f := &d.frag6
		proto = uint8(f.NextHeader)
		k = defrag.IPv6Key(p.Src, p.Dst, proto, f.Identification)
		off, more, frag = int(f.FragmentOffset)*8, f.MoreFragments, f.Payload
	} else {
		ip := &d.ip4
		proto = uint8(ip.Protocol)
		k = defrag.IPv4Key(p.Src, p.Dst, proto, ip.Id)
		off, more, frag = int(ip.FragOffset)*8, ip.Flags&layers.IPv4MoreFragments != 0, ip.Payload
	}
	// Table memory goes to what the sensor follows only: TCP and UDP,
	// and for IPv6 the Destination Options header that may precede them.
	if proto != ProtoTCP && proto != ProtoUDP && (!v6 || proto != ipProtoDestOpts) {
		return ErrSkip
	}
	if d.defrag == nil {
		d.defrag = defrag.New(d.defragCfg)
	}
	dg, ok := d.defrag.Add(k, off, more, frag, ts)
	d.Stats.Defrag = d.defrag.Stats
	if !ok {
		return ErrSkip
	}
	if v6 {
		if proto, dg, ok = skipExtensions(proto, dg); !ok {
			d.Stats.Errors[LayerIPv6]++
			return ErrSkip
		}
	}
	switch proto {
	case ProtoTCP:
		if d.tcp.DecodeFromBytes(dg, gopacket.NilDecodeFeedback) != nil {
			d.Stats.Errors[LayerTCP]++
			return ErrSkip
		}
		d.fillTCP(p)
	case ProtoUDP:
		if d.udp.DecodeFromBytes(dg, gopacket.NilDecodeFeedback) != nil {
			d.Stats.Errors[LayerUDP]++
			return ErrSkip
		}
		d.fillUDP(p)
	default:
		d.Stats.NotTCPUDP++
		return ErrSkip
	}
	p.Reassembled = true
	d.Stats.Decoded++
	return nil
}

// fragmentBehindExtensions looks behind the IPv6 header the parser
// stopped at for a Fragment header after Routing or Destination Options
// headers, which the parser has no decoders for, and decodes it into
// d.frag6.
func (d *Decoder) fragmentBehindExtensions() bool {
	proto := d.ip6.NextHeader
	if d.ip6.HopByHop != nil { // gopacket decodes Hop-by-Hop with the IPv6 header
		proto = d.ip6.HopByHop.NextHeader
	}
	if proto != ipProtoRouting && proto != ipProtoDestOpts {
		return false
	}
	next, rest, ok := skipExtensions(uint8(proto), d.ip6.Payload)
	return ok && next == ipProtoFragment && d.frag6.DecodeFromBytes(rest, gopacket.NilDecodeFeedback) == nil
}

// skipExtensions walks the Hop-by-Hop, Routing and Destination Options
// headers at the start of b, the first of type proto, and returns the
// type and bytes of what follows them. ok is false when a header is cut
// or the chain is implausibly long.
func skipExtensions(proto uint8, b []byte) (next uint8, rest []byte, ok bool) {
	for range 8 {
		switch proto {
		case ipProtoHopByHop, ipProtoRouting, ipProtoDestOpts:
		default:
			return proto, b, true
		}
		if len(b) < 2 {
			return proto, nil, false
		}
		n := (int(b[1]) + 1) * 8
		if len(b) < n {
			return proto, nil, false
		}
		proto, b = b[0], b[n:]
	}
	return proto, nil, false
}
