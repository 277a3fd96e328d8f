package decode

import (
	"encoding/binary"
	"errors"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// gopacket has decoders for these framings but not as DecodingLayers, so
// they cannot sit in a DecodingLayerParser. Each is a few bytes of header.

var (
	layerTypePPP   = gopacket.RegisterLayerType(1901, gopacket.LayerTypeMetadata{Name: "phonehome-PPP"})
	layerTypeCHDLC = gopacket.RegisterLayerType(1902, gopacket.LayerTypeMetadata{Name: "phonehome-CHDLC"})
	layerTypeNFLOG = gopacket.RegisterLayerType(1903, gopacket.LayerTypeMetadata{Name: "phonehome-NFLOG"})
)

var errShort = errors.New("header too short")

// pppProtoLayer maps a PPP protocol number to the next layer.
func pppProtoLayer(proto uint16) gopacket.LayerType {
	switch proto {
	case 0x0021:
		return layers.LayerTypeIPv4
	case 0x0057:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}

// pppoeSession decodes a PPPoE session header and the PPP protocol field
// behind it (RFC 2516).
type pppoeSession struct {
	layers.BaseLayer
	next gopacket.LayerType
}

func (p *pppoeSession) LayerType() gopacket.LayerType  { return layers.LayerTypePPPoE }
func (p *pppoeSession) CanDecode() gopacket.LayerClass { return layers.LayerTypePPPoE }
func (p *pppoeSession) NextLayerType() gopacket.LayerType {
	return p.next
}
func (p *pppoeSession) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShort
	}
	n := int(binary.BigEndian.Uint16(data[4:6]))
	end := 6 + n
	if end > len(data) {
		end = len(data)
	}
	p.next = pppProtoLayer(binary.BigEndian.Uint16(data[6:8]))
	p.BaseLayer = layers.BaseLayer{Contents: data[:8], Payload: data[8:end]}
	return nil
}

// pppLink decodes the PPP link type (DLT_PPP): optional HDLC address and
// control bytes, then the protocol field (1 or 2 bytes).
type pppLink struct {
	layers.BaseLayer
	next gopacket.LayerType
}

func (p *pppLink) LayerType() gopacket.LayerType     { return layerTypePPP }
func (p *pppLink) CanDecode() gopacket.LayerClass    { return layerTypePPP }
func (p *pppLink) NextLayerType() gopacket.LayerType { return p.next }
func (p *pppLink) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	off := 0
	if len(data) >= 2 && data[0] == 0xff && data[1] == 0x03 {
		off = 2
	}
	if len(data) < off+1 {
		df.SetTruncated()
		return errShort
	}
	var proto uint16
	if data[off]&1 == 1 { // compressed 1-byte protocol field
		proto = uint16(data[off])
		off++
	} else {
		if len(data) < off+2 {
			df.SetTruncated()
			return errShort
		}
		proto = binary.BigEndian.Uint16(data[off:])
		off += 2
	}
	p.next = pppProtoLayer(proto)
	p.BaseLayer = layers.BaseLayer{Contents: data[:off], Payload: data[off:]}
	return nil
}

// chdlc decodes Cisco HDLC (DLT_C_HDLC): address, control, EtherType.
type chdlc struct {
	layers.BaseLayer
	next gopacket.LayerType
}

func (c *chdlc) LayerType() gopacket.LayerType     { return layerTypeCHDLC }
func (c *chdlc) CanDecode() gopacket.LayerClass    { return layerTypeCHDLC }
func (c *chdlc) NextLayerType() gopacket.LayerType { return c.next }
func (c *chdlc) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		df.SetTruncated()
		return errShort
	}
	c.next = layers.EthernetType(binary.BigEndian.Uint16(data[2:4])).LayerType()
	c.BaseLayer = layers.BaseLayer{Contents: data[:4], Payload: data[4:]}
	return nil
}

// nflog decodes the Linux NFLOG link type (DLT_NFLOG): a 4-byte header and
// TLVs in host byte order; the packet is in the NFULA_PAYLOAD TLV.
type nflog struct {
	layers.BaseLayer
	next gopacket.LayerType
}

func (n *nflog) LayerType() gopacket.LayerType     { return layerTypeNFLOG }
func (n *nflog) CanDecode() gopacket.LayerClass    { return layerTypeNFLOG }
func (n *nflog) NextLayerType() gopacket.LayerType { return n.next }
func (n *nflog) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		df.SetTruncated()
		return errShort
	}
	switch data[0] {
	case 2:
		n.next = layers.LayerTypeIPv4
	case 10:
		n.next = layers.LayerTypeIPv6
	default:
		n.next = gopacket.LayerTypeZero
	}
	const nfulaPayload = 9
	for off := 4; off+4 <= len(data); {
		l := int(binary.LittleEndian.Uint16(data[off:]))
		t := binary.LittleEndian.Uint16(data[off+2:]) & 0x7fff
		if l < 4 {
			return errors.New("nflog: bad TLV length")
		}
		end := off + l
		if end > len(data) {
			df.SetTruncated()
			end = len(data)
		}
		if t == nfulaPayload {
			n.BaseLayer = layers.BaseLayer{Contents: data[:off+4], Payload: data[off+4 : end]}
			return nil
		}
		off += (l + 3) &^ 3
	}
	return errors.New("nflog: no payload TLV")
}
