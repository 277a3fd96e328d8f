// Package decode turns captured frames into Packets: addresses, ports,
// flags and payload, over preallocated gopacket layers. One Decoder per
// worker; a Decoder is not safe for concurrent use.
package decode

import (
	"errors"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/phonehome-sensor/phonehome/sensor/internal/defrag"
)

// linkTypeNFLOG is DLT_NFLOG, which gopacket does not name.
const linkTypeNFLOG layers.LinkType = 239

// IP protocol numbers the sensor follows.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCP flags, as in the header.
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
)

// Packet is one decoded frame. Payload aliases the frame, or for a
// reassembled datagram the Decoder's reassembly buffer, valid until the
// next Decode or DecodeAt.
type Packet struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8
	Seq              uint32
	SrcMAC           [6]byte
	HasMAC           bool
	Truncated        bool // the frame was cut by the snap length
	Reassembled      bool // the frame completed a fragmented datagram; Payload is the datagram's
	Payload          []byte
}

// Layer names the layer at which a frame could not be decoded.
type Layer uint8

// Layers counted in Stats.Errors.
const (
	LayerLink Layer = iota
	LayerVLAN
	LayerIPv4
	LayerIPv6
	LayerTCP
	LayerUDP
	LayerOther
	numLayers
)

var layerNames = [numLayers]string{"link", "vlan", "ipv4", "ipv6", "tcp", "udp", "other"}

func (l Layer) String() string {
	if l < numLayers {
		return layerNames[l]
	}
	return "unknown"
}

// Stats counts what the decoder saw. Plain counters: one Decoder per worker.
type Stats struct {
	Packets      uint64
	Decoded      uint64 // frames that gave an IP packet with TCP or UDP
	Errors       [numLayers]uint64
	Fragments    uint64 // IP fragments seen (reassembled or not; see Defrag)
	NotTCPUDP    uint64 // IP packets of other protocols (ICMP, ESP, …)
	NotIP        uint64 // frames carrying no IP (ARP, LLDP, …)
	UnknownLink  uint64 // frames of a link type the decoder does not know
	SnapTruncate uint64
	Defrag       defrag.Stats // reassembly of TCP and UDP fragments: a copy of the table's counters
}

// Add adds o to s.
func (s *Stats) Add(o *Stats) {
	s.Packets += o.Packets
	s.Decoded += o.Decoded
	for i := range s.Errors {
		s.Errors[i] += o.Errors[i]
	}
	s.Fragments += o.Fragments
	s.NotTCPUDP += o.NotTCPUDP
	s.NotIP += o.NotIP
	s.UnknownLink += o.UnknownLink
	s.SnapTruncate += o.SnapTruncate
	s.Defrag.Add(&o.Defrag)
}

// ErrorCount is the sum of the per-layer errors.
func (s *Stats) ErrorCount() uint64 {
	var n uint64
	for _, e := range s.Errors {
		n += e
	}
	return n
}

// LayerName returns the name of layer i for reports.
func LayerName(i int) string { return Layer(i).String() }

// NumLayers is the number of entries in Stats.Errors.
const NumLayers = int(numLayers)

// Decoder decodes frames of any supported link type.
type Decoder struct {
	eth   layers.Ethernet
	dot1q layers.Dot1Q
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	loop  layers.Loopback
	pppoe pppoeSession
	ppp   pppLink
	hdlc  chdlc
	nfl   nflog
	ip4   layers.IPv4
	ip6   layers.IPv6
	frag6 layers.IPv6Fragment
	tcp   layers.TCP
	udp   layers.UDP

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	// defrag reassembles fragments; made on the first fragment, as most
	// traffic has none.
	defrag    *defrag.Table
	defragCfg defrag.Config
	noFast    bool // tests: gopacket's path for every frame
	Stats     Stats
}

// New returns a Decoder that reassembles fragments within
// defrag.DefaultConfig.
func New() *Decoder { return NewWithConfig(defrag.Config{}) }

// NewWithConfig returns a Decoder whose fragment reassembly is bounded by
// cfg (zero fields take defrag.DefaultConfig's).
func NewWithConfig(cfg defrag.Config) *Decoder {
	return &Decoder{
		parsers:   make(map[gopacket.LayerType]*gopacket.DecodingLayerParser),
		decoded:   make([]gopacket.LayerType, 0, 16),
		defragCfg: cfg,
	}
}

func (d *Decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	p := d.parsers[first]
	if p == nil {
		p = gopacket.NewDecodingLayerParser(first,
			&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop, &d.pppoe, &d.ppp, &d.hdlc, &d.nfl,
			&d.ip4, &d.ip6, &d.frag6, &d.tcp, &d.udp)
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	return p
}

// FirstLayer returns the layer a frame of link type lt starts with, or
// LayerTypeZero when the link type is not supported.
func FirstLayer(lt layers.LinkType, data []byte) gopacket.LayerType {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case layers.LinkTypeRaw, 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6
		}
		return layers.LayerTypeIPv4
	case layers.LinkTypePPP:
		return layerTypePPP
	case layers.LinkTypeC_HDLC:
		return layerTypeCHDLC
	case linkTypeNFLOG:
		return layerTypeNFLOG
	}
	return gopacket.LayerTypeZero
}

// ErrSkip reports a frame that carries nothing to follow: not IP, not
// TCP/UDP, an IP fragment that completes no datagram, or undecodable
// (counted in Stats).
var ErrSkip = errors.New("decode: frame skipped")

// Decode is DecodeAt at packet time 0. Time then stands still for
// reassembly: incomplete datagrams never time out and leave only when the
// table's caps push them out. Callers that know packet time use DecodeAt,
// and should not mix the two on one Decoder.
func (d *Decoder) Decode(lt layers.LinkType, data []byte, p *Packet) error {
	return d.DecodeAt(lt, data, 0, p)
}

// DecodeAt decodes one frame, seen at packet time ts (Unix nanoseconds),
// into p. It returns ErrSkip when the frame has no TCP or UDP packet to
// follow; the reason is counted in d.Stats. A TCP or UDP fragment goes to
// the reassembly table; the fragment that completes its datagram decodes
// as the whole datagram would, with p.Reassembled set.
func (d *Decoder) DecodeAt(lt layers.LinkType, data []byte, ts int64, p *Packet) error {
	d.Stats.Packets++
	p.Reassembled = false
	if d.defrag != nil && d.defrag.Len() > 0 {
		// expire idle datagrams on packet time even when no fragment comes
		d.defrag.Expire(ts)
		d.Stats.Defrag = d.defrag.Stats
	}
	if lt == layers.LinkTypeEthernet && d.fast(data, p) {
		d.Stats.Decoded++
		return nil
	}
	first := FirstLayer(lt, data)
	if first == gopacket.LayerTypeZero {
		d.Stats.UnknownLink++
		return ErrSkip
	}
	parser := d.parser(first)
	err := parser.DecodeLayers(data, &d.decoded)
	if parser.Truncated {
		d.Stats.SnapTruncate++
		p.Truncated = true
	} else {
		p.Truncated = false
	}
	var (
		haveIP, haveL4 bool
		isFrag, fragV6 bool
	)
	p.HasMAC = false
	p.Proto = 0
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeEthernet:
			if !p.HasMAC {
				copy(p.SrcMAC[:], d.eth.SrcMAC)
				p.HasMAC = len(d.eth.SrcMAC) == 6
			}
		case layers.LayerTypeIPv4:
			p.Src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			p.Dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
			haveIP = true
			isFrag, fragV6 = d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0, false
		case layers.LayerTypeIPv6:
			p.Src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			p.Dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			haveIP = true
			isFrag = false
		case layers.LayerTypeIPv6Fragment:
			isFrag, fragV6 = d.frag6.FragmentOffset != 0 || d.frag6.MoreFragments, true
		case layers.LayerTypeTCP:
			d.fillTCP(p)
			haveL4 = true
		case layers.LayerTypeUDP:
			d.fillUDP(p)
			haveL4 = true
		}
	}
	if err != nil {
		d.Stats.Errors[d.failedLayer(first)]++
		return ErrSkip
	}
	if haveIP && !haveL4 && !isFrag && d.decoded[len(d.decoded)-1] == layers.LayerTypeIPv6 {
		// Routing or Destination Options headers, which the parser does
		// not know, may stand before a Fragment header.
		isFrag, fragV6 = d.fragmentBehindExtensions(), true
	}
	switch {
	case haveL4:
		d.Stats.Decoded++
		return nil
	case isFrag:
		d.Stats.Fragments++
		if parser.Truncated {
			// the snap length cut the fragment: its datagram cannot be whole
			return ErrSkip
		}
		return d.reassemble(fragV6, ts, p)
	case haveIP:
		d.Stats.NotTCPUDP++
	default:
		d.Stats.NotIP++
	}
	return ErrSkip
}

// failedLayer names the layer that failed: the one after the last decoded.
func (d *Decoder) failedLayer(first gopacket.LayerType) Layer {
	next := first
	if n := len(d.decoded); n > 0 {
		switch d.decoded[n-1] {
		case layers.LayerTypeEthernet:
			next = d.eth.NextLayerType()
		case layers.LayerTypeDot1Q:
			next = d.dot1q.NextLayerType()
		case layers.LayerTypeLinuxSLL:
			next = d.sll.NextLayerType()
		case layers.LayerTypeLinuxSLL2:
			next = d.sll2.NextLayerType()
		case layers.LayerTypeLoopback:
			next = d.loop.NextLayerType()
		case layers.LayerTypePPPoE:
			next = d.pppoe.NextLayerType()
		case layers.LayerTypeIPv4:
			next = d.ip4.NextLayerType()
		case layers.LayerTypeIPv6:
			next = d.ip6.NextLayerType()
		case layers.LayerTypeIPv6Fragment:
			next = d.frag6.NextLayerType()
		default:
			next = gopacket.LayerTypeZero
		}
	}
	switch next {
	case layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLinuxSLL2,
		layers.LayerTypeLoopback, layers.LayerTypePPPoE, layerTypePPP, layerTypeCHDLC, layerTypeNFLOG:
		return LayerLink
	case layers.LayerTypeDot1Q:
		return LayerVLAN
	case layers.LayerTypeIPv4:
		return LayerIPv4
	case layers.LayerTypeIPv6, layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Fragment:
		return LayerIPv6
	case layers.LayerTypeTCP:
		return LayerTCP
	case layers.LayerTypeUDP:
		return LayerUDP
	}
	return LayerOther
}
