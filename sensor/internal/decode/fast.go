package decode

import (
	"encoding/binary"
	"net/netip"
)

// fast decodes the frames that make nearly all of a tap's traffic —
// Ethernet, at most one 802.1Q tag, IPv4 without options or IPv6 without
// extension headers, whole, not a fragment, carrying TCP or UDP — with a
// few bounds checks instead of gopacket's layer-by-layer parser, which
// costs about a fifth of a worker's time. It reports false, having written
// nothing to p, for any other frame: DecodeAt then takes
// gopacket's path, which is the reference (TestFastPathAgrees and
// FuzzFastPath hold the two to the same result).
func (d *Decoder) fast(data []byte, p *Packet) bool {
	if d.noFast || len(data) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(data[12:14])
	l3 := data[14:]
	if et == 0x8100 {
		if len(l3) < 4 {
			return false
		}
		et = binary.BigEndian.Uint16(l3[2:4])
		l3 = l3[4:]
	}
	var l4 []byte
	var proto uint8
	var src, dst netip.Addr
	switch et {
	case 0x0800:
		if len(l3) < 20 || l3[0] != 0x45 {
			return false // not version 4 with a 20-byte header: options, or junk
		}
		n := int(binary.BigEndian.Uint16(l3[2:4]))
		if n < 20 || n > len(l3) {
			return false // TSO's zero length, too short, or cut by the snap length
		}
		if binary.BigEndian.Uint16(l3[6:8])&0x3fff != 0 {
			return false // a fragment: reassembly
		}
		proto = l3[9]
		src = netip.AddrFrom4([4]byte(l3[12:16]))
		dst = netip.AddrFrom4([4]byte(l3[16:20]))
		l4 = l3[20:n]
	case 0x86dd:
		if len(l3) < 40 || l3[0]>>4 != 6 {
			return false
		}
		n := int(binary.BigEndian.Uint16(l3[4:6]))
		if n == 0 || 40+n > len(l3) {
			return false // jumbogram, or cut
		}
		proto = l3[6] // an extension header is not 6 or 17: gopacket's path
		src = netip.AddrFrom16([16]byte(l3[8:24]))
		dst = netip.AddrFrom16([16]byte(l3[24:40]))
		l4 = l3[40 : 40+n]
	default:
		return false
	}
	switch proto {
	case ProtoTCP:
		if len(l4) < 20 {
			return false
		}
		off := int(l4[12]>>4) * 4
		if off < 20 || off > len(l4) {
			return false
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.Seq = binary.BigEndian.Uint32(l4[4:8])
		p.TCPFlags = l4[13] & (FlagFIN | FlagSYN | FlagRST | FlagPSH | FlagACK)
		p.Payload = l4[off:]
	case ProtoUDP:
		if len(l4) < 8 {
			return false
		}
		n := int(binary.BigEndian.Uint16(l4[4:6]))
		if n < 8 || n > len(l4) {
			return false
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.TCPFlags = 0
		p.Payload = l4[8:n]
	default:
		return false
	}
	p.Src, p.Dst, p.Proto = src, dst, proto
	copy(p.SrcMAC[:], data[6:12])
	p.HasMAC = true
	p.Truncated = false
	return true
}
