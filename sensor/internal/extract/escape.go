package extract

// Strings from the wire are attacker-controlled and end up in JSON, logs and
// terminals. Both functions below emit printable ASCII only, so no control
// sequence, newline or invalid UTF-8 reaches an output, and they append to
// dst so the hot path can reuse one buffer.

// AppendName appends a DNS/SNI/Host name to dst normalised for output and
// matching: ASCII letters lower-cased, one trailing dot removed, and every
// byte outside 0x21..0x7e, plus '\\', written as a backslash and three
// decimal digits (\DDD, as in RFC 1035 master files and tshark: "\001").
//
// A dot still ending the name after that removal (input "a..") is written as
// \046, so the output never ends in '.' and AppendName leaves its own
// backslash-free output unchanged.
func AppendName(dst, name []byte) []byte {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	last := len(name) - 1
	for i, c := range name {
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+('a'-'A'))
		case c <= 0x20 || c >= 0x7f || c == '\\' || c == '.' && i == last:
			dst = append(dst, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

const lowerHex = "0123456789abcdef"

// AppendText appends free text (User-Agent, …) to dst: printable ASCII
// 0x20..0x7e kept with the backslash doubled, other bytes as \xHH. At most
// max input bytes are taken (none when max <= 0); "..." is appended when the
// text was cut. The output is thus at most 4*max+3 bytes.
func AppendText(dst, text []byte, max int) []byte {
	cut := false
	if max < 0 {
		max = 0
	}
	if len(text) > max {
		text, cut = text[:max], true
	}
	// Copy runs of bytes that need no escaping in one append: text is
	// mostly plain ASCII.
	start := 0
	for i, c := range text {
		if 0x20 <= c && c <= 0x7e && c != '\\' {
			continue
		}
		dst = append(dst, text[start:i]...)
		if c == '\\' {
			dst = append(dst, '\\', '\\')
		} else {
			dst = append(dst, '\\', 'x', lowerHex[c>>4], lowerHex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, text[start:]...)
	if cut {
		dst = append(dst, "..."...)
	}
	return dst
}
