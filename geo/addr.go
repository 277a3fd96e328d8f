package geo

import "net/netip"

// normalize returns the address to look up for a, and false when a is not a
// globally routed unicast address, which no database can place. IPv4-mapped
// (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d, RFC 6052) addresses become
// their IPv4 address; a zone is dropped.
func normalize(a netip.Addr) (netip.Addr, bool) {
	if !a.IsValid() {
		return a, false
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a, global4(a.As4())
	}
	b := a.As16()
	if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
		b[4]|b[5]|b[6]|b[7]|b[8]|b[9]|b[10]|b[11] == 0 {
		v4 := [4]byte{b[12], b[13], b[14], b[15]}
		return netip.AddrFrom4(v4), global4(v4)
	}
	switch {
	case b[0]&0xe0 != 0x20: // outside 2000::/3 global unicast: ULA, link-local, multicast, ::1, …
		return a, false
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8: // 2001:db8::/32 documentation
		return a, false
	case b[0] == 0x3f && b[1] == 0xff && b[2]&0xf0 == 0: // 3fff::/20 documentation
		return a, false
	}
	return a, true
}

// global4 reports whether b is outside the IPv4 special-purpose ranges that
// are not globally reachable (RFC 6890 and the IANA registry): 0/8, 10/8,
// 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
// 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24 and 224/3 (multicast,
// reserved, broadcast).
func global4(b [4]byte) bool {
	switch b[0] {
	case 0, 10, 127:
		return false
	case 100:
		return b[1]&0xc0 != 64
	case 169:
		return b[1] != 254
	case 172:
		return b[1]&0xf0 != 16
	case 192:
		return b[1] != 168 && (b[1] != 0 || (b[2] != 0 && b[2] != 2))
	case 198:
		return b[1]&0xfe != 18 && (b[1] != 51 || b[2] != 100)
	case 203:
		return b[1] != 0 || b[2] != 113
	}
	return b[0] < 224
}
