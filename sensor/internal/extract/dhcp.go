package extract

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ErrNotDHCP is returned for payloads that are not a DHCP message.
var ErrNotDHCP = errors.New("extract: not a DHCP message")

// DHCPHost is what a DHCP message says of a client's name: the sensor
// names inventoried hosts with it.
type DHCPHost struct {
	MsgType  uint8      // DHCPv4 option 53 or the DHCPv6 message type
	MAC      [6]byte    // chaddr (DHCPv4, Ethernet only)
	HasMAC   bool       //
	Addr     netip.Addr // the address the name goes with: yiaddr (ACK), ciaddr or requested address (option 50); DHCPv6: the first IA address
	Hostname []byte     // option 12, else the name of option 81 (client FQDN); DHCPv6: option 39; aliases the input (wire format labels decoded into scratch)
}

// DHCPv4 message types and DHCPv6 ones that carry names.
const (
	DHCPDiscover  = 1
	DHCPRequest   = 3
	DHCPAck       = 5
	dhcpv6Solicit = 1
	dhcpv6Request = 3
	dhcpv6Reply   = 7
)

var dhcpMagic = []byte{99, 130, 83, 99}

// ParseDHCPv4 reads a BOOTP/DHCPv4 message (RFC 2131): the client's MAC,
// the address the message is about and the host name of option 12 (or
// of option 81, RFC 4702). scratch receives a name decoded from DNS wire
// format; the result may alias p or scratch.
func ParseDHCPv4(p []byte, scratch []byte, h *DHCPHost) ([]byte, error) {
	*h = DHCPHost{}
	if len(p) < 240 || (p[0] != 1 && p[0] != 2) || p[1] != 1 || p[2] != 6 || string(p[236:240]) != string(dhcpMagic) {
		return scratch, ErrNotDHCP
	}
	copy(h.MAC[:], p[28:34])
	h.HasMAC = true
	ciaddr := netip.AddrFrom4([4]byte(p[12:16]))
	yiaddr := netip.AddrFrom4([4]byte(p[16:20]))
	var requested netip.Addr
	var fqdn []byte
	for opts := p[240:]; len(opts) > 0; {
		code := opts[0]
		if code == 0 {
			opts = opts[1:]
			continue
		}
		if code == 255 {
			break
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return scratch, ErrMalformed
		}
		v := opts[2 : 2+int(opts[1]) : 2+int(opts[1])]
		opts = opts[2+int(opts[1]):]
		switch code {
		case 53:
			if len(v) == 1 {
				h.MsgType = v[0]
			}
		case 12:
			if len(v) > 0 && h.Hostname == nil {
				h.Hostname = v
			}
		case 50:
			if len(v) == 4 {
				requested = netip.AddrFrom4([4]byte(v))
			}
		case 81:
			if len(v) > 3 {
				fqdn = v[3:]
				if v[0]&0x04 != 0 { // E flag: canonical wire format
					var err error
					if scratch, err = appendWireName(scratch[:0], fqdn); err != nil {
						return scratch, err
					}
					fqdn = scratch
				}
			}
		}
	}
	if h.Hostname == nil {
		h.Hostname = fqdn
	}
	switch {
	case !yiaddr.IsUnspecified() && h.MsgType == DHCPAck:
		h.Addr = yiaddr
	case !ciaddr.IsUnspecified():
		h.Addr = ciaddr
	case requested.IsValid():
		h.Addr = requested
	case !yiaddr.IsUnspecified():
		h.Addr = yiaddr
	}
	return scratch, nil
}

// ParseDHCPv6 reads a DHCPv6 client or server message (RFC 8415): the
// first address of an IA_NA and the name of the Client FQDN option
// (39, RFC 4704), decoded into scratch.
func ParseDHCPv6(p []byte, scratch []byte, h *DHCPHost) ([]byte, error) {
	*h = DHCPHost{}
	if len(p) < 4 || p[0] == 0 || p[0] > 13 || p[0] == 12 || p[0] == 13 {
		return scratch, ErrNotDHCP // relay messages are not followed
	}
	h.MsgType = p[0]
	for opts := p[4:]; len(opts) > 0; {
		if len(opts) < 4 {
			return scratch, ErrMalformed
		}
		code, n := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if len(opts) < 4+n {
			return scratch, ErrMalformed
		}
		v := opts[4 : 4+n]
		opts = opts[4+n:]
		switch code {
		case 3: // IA_NA: IAID, T1, T2, then options (IAADDR = 5)
			for sub := v[min(12, len(v)):]; len(sub) >= 4; {
				sc, sn := binary.BigEndian.Uint16(sub), int(binary.BigEndian.Uint16(sub[2:]))
				if len(sub) < 4+sn {
					break
				}
				if sc == 5 && sn >= 24 && !h.Addr.IsValid() {
					h.Addr = netip.AddrFrom16([16]byte(sub[4:20]))
				}
				sub = sub[4+sn:]
			}
		case 39:
			if len(v) > 1 {
				var err error
				if scratch, err = appendWireName(scratch[:0], v[1:]); err != nil {
					return scratch, err
				}
				h.Hostname = scratch
			}
		}
	}
	return scratch, nil
}

// appendWireName decodes a DNS wire-format name (no compression), or a
// partial one (no terminating root label), as dotted text.
func appendWireName(dst, b []byte) ([]byte, error) {
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 {
			break
		}
		if n > 63 || len(b) < 1+n {
			return dst, ErrMalformed
		}
		if len(dst) > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, b[1:1+n]...)
		b = b[1+n:]
		if len(dst) > 255 {
			return dst, ErrMalformed
		}
	}
	return dst, nil
}
