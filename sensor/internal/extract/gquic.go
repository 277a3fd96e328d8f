package extract

import "encoding/binary"

// Google QUIC before Q050 (and before the TLS-based T05x) sends its
// handshake, a QUIC-crypto CHLO message, in clear: the payload is only
// "null-encrypted" (a 12-byte FNV-1a hash precedes the frames) and the
// CHLO is the data of the STREAM frame for stream 1 at offset 0.
//
// Two header formats are read: the gQUIC public header (flags, 8-byte
// connection ID, version, packet number) of Q039..Q043, and the
// IETF-invariant long header of Q046 (form and fixed bits, version, one
// byte of DCID/SCID length nibbles, packet number of 1..4 bytes).

const (
	gquicQ039 = 0x51303339 // "Q039": the first version with big-endian frame fields
	gquicQ043 = 0x51303433 // "Q043"
	gquicQ046 = 0x51303436 // "Q046"

	gquicHashLen = 12 // message authentication hash of the null encryption

	// maxCHLOTags bounds the tag count of a CHLO (Chromium's
	// kMaxEntries), maxCHLOLen its values (a CHLO is padded to a
	// packet; 64 KiB is generous).
	maxCHLOTags = 128
	maxCHLOLen  = 1 << 16
)

// ParseGQUICCHLO reads the SNI of a Google QUIC client's first packet,
// whose CHLO is in clear: versions Q039..Q043 (public header) and Q046
// (long header). sni aliases p (capped) and is nil when the CHLO has no SNI
// tag. version is the packet's version.
//
// It returns ErrNotQUIC, quickly and without allocating, for anything that
// is not such a packet or holds no CHLO start (a later packet of the
// handshake, another frame first), ErrMalformed for an inconsistent STREAM
// frame or CHLO tag table, and ErrIncomplete when the SNI value runs past
// the packet (the CHLO continues in the next one).
func ParseGQUICCHLO(p []byte) (sni []byte, version uint32, err error) {
	payload, version, ok := gquicPayload(p)
	if !ok {
		return nil, 0, ErrNotQUIC
	}
	data, err := gquicCHLOStart(payload)
	if err != nil {
		return nil, 0, err
	}
	sni, err = chloSNI(data)
	if err != nil {
		return nil, 0, err
	}
	return sni, version, nil
}

// ParseGQUICCHLOMessage reads the SNI tag of a complete QUIC-crypto CHLO
// message, such as QUICAssembler.CHLO returns for Q050. sni aliases msg and
// is nil when there is no SNI tag.
func ParseGQUICCHLOMessage(msg []byte) (sni []byte, err error) {
	return chloSNI(msg)
}

// gquicPayload returns the frames of a clear-text gQUIC client packet (after
// the header and the null-encryption hash) and its version.
func gquicPayload(p []byte) ([]byte, uint32, bool) {
	if len(p) < 1+4+1+gquicHashLen {
		return nil, 0, false
	}
	f := p[0]
	var i int
	var version uint32
	if f&0x80 != 0 {
		// Q046: 0b11TT__PP, Initial is type 0; lengths are nibbles,
		// 0 or 3 plus the value.
		if f&0xf0 != 0xc0 {
			return nil, 0, false
		}
		version = binary.BigEndian.Uint32(p[1:5])
		if version != gquicQ046 {
			return nil, 0, false
		}
		dl, sl := int(p[5]>>4), int(p[5]&0x0f)
		if dl > 0 {
			dl += 3
		}
		if sl > 0 {
			sl += 3
		}
		i = 6 + dl + sl + int(f&3) + 1
	} else {
		// Public header: version flag 0x01 set; reset 0x02, the
		// server-only diversification nonce 0x04 and the reserved
		// 0x40 clear; 0x08 announces an 8-byte connection ID; bits
		// 0x30 the packet number length (1, 2, 4, 6).
		if f&0x47 != 0x01 {
			return nil, 0, false
		}
		i = 1
		if f&0x08 != 0 {
			i += 8
		}
		if len(p) < i+4 {
			return nil, 0, false
		}
		version = binary.BigEndian.Uint32(p[i : i+4])
		if version < gquicQ039 || version > gquicQ043 || p[i+3] < '0' || p[i+3] > '9' {
			return nil, 0, false
		}
		i += 4 + [4]int{1, 2, 4, 6}[f>>4&3]
	}
	i += gquicHashLen
	if len(p) < i {
		return nil, 0, false
	}
	return p[i:], version, true
}

// gquicCHLOStart returns the data of the first STREAM frame for stream 1
// when it is at offset 0, skipping PING frames before it. Frame type
// 0b1FDOOOSS: FIN, data length present, offset length (0, or 2..8 bytes
// for 1..7) and stream ID length (1..4 bytes); fields are big-endian from
// Q039 on.
func gquicCHLOStart(b []byte) ([]byte, error) {
	for len(b) > 0 {
		t := b[0]
		if t == 0x07 { // PING
			b = b[1:]
			continue
		}
		if t&0x80 == 0 { // PADDING (the rest of the packet), ACK, STOP_WAITING…
			return nil, ErrNotQUIC
		}
		sidLen := int(t&3) + 1
		offLen := int(t >> 2 & 7)
		if offLen > 0 {
			offLen++
		}
		i := 1 + sidLen + offLen
		if len(b) < i {
			return nil, ErrMalformed
		}
		var sid, off uint64
		for _, c := range b[1 : 1+sidLen] {
			sid = sid<<8 | uint64(c)
		}
		for _, c := range b[1+sidLen : i] {
			off = off<<8 | uint64(c)
		}
		n := len(b) - i
		if t&0x20 != 0 {
			if len(b) < i+2 {
				return nil, ErrMalformed
			}
			n = int(binary.BigEndian.Uint16(b[i : i+2]))
			i += 2
			if n > len(b)-i {
				return nil, ErrMalformed
			}
		}
		if sid == 1 {
			if off != 0 {
				return nil, ErrNotQUIC // a continuation of the CHLO
			}
			return b[i : i+n : i+n], nil
		}
		b = b[i+n:]
	}
	return nil, ErrNotQUIC
}

// chloSNI finds the "SNI\0" tag of a CHLO: "CHLO", a little-endian uint16
// tag count, two bytes of padding, then (tag, little-endian uint32 end
// offset) pairs and the values, each ending at its end offset counted from
// the end of the table. The offsets must not decrease. msg may stop early
// (the CHLO continuing in another packet): ErrIncomplete is returned only
// when the table or the SNI value are cut.
func chloSNI(msg []byte) ([]byte, error) {
	if len(msg) < 4 || string(msg[:4]) != "CHLO" {
		return nil, ErrNotQUIC
	}
	if len(msg) < 8 {
		return nil, ErrIncomplete
	}
	n := int(binary.LittleEndian.Uint16(msg[4:6]))
	if n > maxCHLOTags {
		return nil, ErrMalformed
	}
	table := 8 + 8*n
	if len(msg) < table {
		return nil, ErrIncomplete
	}
	values := msg[table:]
	var prev uint32
	for e := msg[8:table]; len(e) >= 8; e = e[8:] {
		end := binary.LittleEndian.Uint32(e[4:8])
		if end < prev || end > maxCHLOLen {
			return nil, ErrMalformed
		}
		if string(e[:4]) == "SNI\x00" {
			if int(end) > len(values) {
				return nil, ErrIncomplete
			}
			return values[prev:end:end], nil
		}
		prev = end
	}
	return nil, nil
}
