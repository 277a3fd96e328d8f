package decode

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// FlowHash returns a symmetric hash of a frame's addresses and ports (A→B
// and B→A hash alike) for sharding packets over workers, so that both
// directions of a flow meet in the same worker. It walks the headers by
// hand, without a Decoder, because the reader goroutine calls it for every
// packet. Frames it cannot walk hash to 0.
func FlowHash(lt layers.LinkType, data []byte) uint32 {
	var off int
	var etype uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[12:]), 14
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[14:]), 16
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[0:]), 20
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 5 {
			return 0
		}
		off = 4
		etype = ipEtype(data[4])
	case layers.LinkTypeRaw, 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) < 1 {
			return 0
		}
		etype = ipEtype(data[0])
	default:
		return 0
	}
	for i := 0; i < 4 && (etype == 0x8100 || etype == 0x88a8 || etype == 0x9100); i++ {
		if len(data) < off+4 {
			return 0
		}
		etype = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	if etype == 0x8864 { // PPPoE session + PPP
		if len(data) < off+8 {
			return 0
		}
		switch binary.BigEndian.Uint16(data[off+6:]) {
		case 0x0021:
			etype = 0x0800
		case 0x0057:
			etype = 0x86dd
		default:
			return 0
		}
		off += 8
	}
	var a, b []byte
	var proto byte
	switch etype {
	case 0x0800:
		if len(data) < off+20 {
			return 0
		}
		ihl := int(data[off]&0x0f) * 4
		proto = data[off+9]
		a, b = data[off+12:off+16], data[off+16:off+20]
		if binary.BigEndian.Uint16(data[off+6:])&0x3fff != 0 { // fragment: no ports
			return mix(a, b, 0, 0, proto)
		}
		off += ihl
	case 0x86dd:
		if len(data) < off+40 {
			return 0
		}
		proto = data[off+6]
		a, b = data[off+8:off+24], data[off+24:off+40]
		off += 40
	default:
		return 0
	}
	if (proto == 6 || proto == 17) && len(data) >= off+4 {
		return mix(a, b, binary.BigEndian.Uint16(data[off:]), binary.BigEndian.Uint16(data[off+2:]), proto)
	}
	return mix(a, b, 0, 0, proto)
}

func ipEtype(b byte) uint16 {
	switch b >> 4 {
	case 4:
		return 0x0800
	case 6:
		return 0x86dd
	}
	return 0
}

// mix hashes each endpoint and adds the two, which makes the result
// independent of direction.
func mix(a, b []byte, pa, pb uint16, proto byte) uint32 {
	return endpointHash(a, pa) + endpointHash(b, pb) + uint32(proto)
}

func endpointHash(ip []byte, port uint16) uint32 {
	h := uint32(2166136261)
	for _, c := range ip {
		h = (h ^ uint32(c)) * 16777619
	}
	h = (h ^ uint32(port>>8)) * 16777619
	h = (h ^ uint32(port&0xff)) * 16777619
	// finalise so that the sum of two hashes still spreads well
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	return h
}
