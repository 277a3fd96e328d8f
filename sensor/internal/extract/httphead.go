package extract

import (
	"bytes"
	"errors"
)

// ErrNotHTTP is returned by ParseHTTPRequest when p does not start with an
// HTTP/1.x request line.
var ErrNotHTTP = errors.New("extract: not an HTTP request")

const (
	// Bounds on the work per payload; real request heads are far smaller
	// and servers commonly refuse heads above 8 KiB.
	maxHeadLen     = 8 << 10
	maxHeaderLines = 100
)

// HTTPRequest is what the sensor reads from an HTTP/1.x request head. Slices
// alias the input and are capped, so appending to them copies.
type HTTPRequest struct {
	Method    []byte
	Target    []byte // possibly cut short when Version is nil
	Version   []byte // e.g. "HTTP/1.1"; nil when p ends inside the request line
	Host      []byte // value of the first Host header (trimmed of optional whitespace), nil if absent in the bytes seen
	UserAgent []byte // value of the first User-Agent header, nil if absent
	Complete  bool   // the head's terminating empty line was seen
	HeadLen   int    // bytes of p taken by the head, terminating empty line included; 0 unless Complete
}

// Reset clears r so it holds no reference to a previous input.
func (r *HTTPRequest) Reset() { *r = HTTPRequest{} }

// IsRequestStart reports whether p starts with a known HTTP/1.x method token
// followed by a space. The table is small and fixed (RFC 9110 methods, PATCH
// and the common WebDAV ones); the first byte is checked first, so non-HTTP
// payloads are rejected at once.
func IsRequestStart(p []byte) bool {
	if len(p) < 4 {
		return false
	}
	switch p[0] {
	case 'G':
		return hasPrefix(p, "GET ")
	case 'P':
		return hasPrefix(p, "POST ") || hasPrefix(p, "PUT ") || hasPrefix(p, "PATCH ") ||
			hasPrefix(p, "PROPFIND ") || hasPrefix(p, "PROPPATCH ")
	case 'H':
		return hasPrefix(p, "HEAD ")
	case 'D':
		return hasPrefix(p, "DELETE ")
	case 'O':
		return hasPrefix(p, "OPTIONS ")
	case 'C':
		return hasPrefix(p, "CONNECT ") || hasPrefix(p, "COPY ")
	case 'T':
		return hasPrefix(p, "TRACE ")
	case 'M':
		return hasPrefix(p, "MKCOL ") || hasPrefix(p, "MOVE ")
	case 'L':
		return hasPrefix(p, "LOCK ")
	case 'U':
		return hasPrefix(p, "UNLOCK ")
	}
	return false
}

// hasPrefix compares without allocating (the conversion is not materialised).
func hasPrefix(p []byte, s string) bool {
	return len(p) >= len(s) && string(p[:len(s)]) == s
}

// ParseHTTPRequest parses the request line and headers in p into r. Only the
// first 8 KiB and 100 header lines are looked at. Header names match
// case-insensitively; bare LF line endings are tolerated; obs-fold
// continuation lines and lines without a colon are skipped, never appended to
// a value. Bytes after the head (a body, a pipelined request) are ignored.
//
// A head cut short by the end of p (or by the bounds) yields what was seen in
// complete lines with Complete false: a Host header counts only once its line
// has ended, so a cut value is never reported. If p ends inside the request
// line, Method and the part of Target seen are set, Version is nil, and the
// error is nil as long as what was seen is a valid prefix.
//
// It returns ErrNotHTTP if the request line is not `METHOD SP TARGET SP
// HTTP/x.y` (method a token, target visible non-space bytes, x and y single
// digits), with an optional CR before the LF. On error, r is reset.
func ParseHTTPRequest(p []byte, r *HTTPRequest) error {
	r.Reset()
	if len(p) > maxHeadLen {
		p = p[:maxHeadLen]
	}
	line, rest, ok := cutLine(p)
	if !ok {
		if !parseRequestLinePrefix(p, r) {
			r.Reset()
			return ErrNotHTTP
		}
		return nil
	}
	if !parseRequestLine(line, r) {
		r.Reset()
		return ErrNotHTTP
	}
	for n := 0; ; n++ {
		line, next, ok := cutLine(rest)
		if !ok {
			return nil // cut short; a partial last line is not trusted
		}
		if len(line) == 0 {
			r.Complete = true
			r.HeadLen = len(p) - len(next)
			return nil
		}
		if n == maxHeaderLines {
			return nil
		}
		rest = next
		if line[0] == ' ' || line[0] == '\t' {
			continue // obs-fold (RFC 9112 §5.2): deprecated, and folding into Host is an evasion trick
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		name, value := line[:i], trimOWS(line[i+1:])
		switch {
		case r.Host == nil && equalFoldASCII(name, "host"):
			r.Host = value
		case r.UserAgent == nil && equalFoldASCII(name, "user-agent"):
			r.UserAgent = value
		}
	}
}

// cutLine splits p at the first LF, dropping one CR before it.
func cutLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return nil, p, false
	}
	line, rest = p[:i:i], p[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[: n-1 : n-1]
	}
	return line, rest, true
}

// parseRequestLine parses a whole request line (CR LF already removed).
func parseRequestLine(line []byte, r *HTTPRequest) bool {
	m := tokenLen(line)
	if m == 0 || m == len(line) || line[m] != ' ' {
		return false
	}
	rest := line[m+1:]
	t := targetLen(rest)
	if t == 0 || t == len(rest) || rest[t] != ' ' {
		return false
	}
	v := rest[t+1:]
	if len(v) != len("HTTP/x.y") || !hasPrefix(v, "HTTP/") || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return false
	}
	r.Method = line[:m:m]
	r.Target = rest[:t:t]
	r.Version = v[:len(v):len(v)]
	return true
}

// parseRequestLinePrefix accepts p when it is a prefix of a valid request
// line that has at least its method and the following space; it sets Method
// and the Target seen.
func parseRequestLinePrefix(p []byte, r *HTTPRequest) bool {
	m := tokenLen(p)
	if m == 0 || m == len(p) || p[m] != ' ' {
		return false
	}
	rest := p[m+1:]
	t := targetLen(rest)
	if t < len(rest) {
		if t == 0 || rest[t] != ' ' {
			return false
		}
		const pattern = "HTTP/9.9\r" // '9' stands for any digit
		v := rest[t+1:]
		if len(v) > len(pattern) {
			return false
		}
		for i, c := range v {
			if pattern[i] == '9' && !isDigit(c) || pattern[i] != '9' && c != pattern[i] {
				return false
			}
		}
	}
	r.Method = p[:m:m]
	r.Target = rest[:t:t]
	return true
}

// tokenLen returns the length of the RFC 9110 token at the start of p.
func tokenLen(p []byte) int {
	for i, c := range p {
		if !isTokenChar(c) {
			return i
		}
	}
	return len(p)
}

// targetLen returns the length of the run of visible non-space bytes at the
// start of p. Bytes >= 0x80 are allowed: clients do send raw UTF-8.
func targetLen(p []byte) int {
	for i, c := range p {
		if c <= ' ' || c == 0x7f {
			return i
		}
	}
	return len(p)
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// trimOWS trims optional whitespace (SP, HTAB) from both ends. The result of
// trimming a present value to nothing stays non-nil, so "present but empty"
// differs from "absent".
func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for n := len(v); n > 0 && (v[n-1] == ' ' || v[n-1] == '\t'); n-- {
		v = v[:n-1]
	}
	return v[:len(v):len(v)]
}

// equalFoldASCII reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// TargetAuthority returns the authority (host[:port]) of a request target
// in absolute form ("http://host:port/path", RFC 9112 §3.2.2, as sent to
// proxies) or authority form ("host:port", CONNECT §3.2.3), without any
// userinfo; nil for origin-form and asterisk-form targets. Through a
// proxy, this is where the request goes, whatever the Host header says.
func TargetAuthority(r *HTTPRequest) []byte {
	t := r.Target
	if len(t) == 0 || t[0] == '/' || t[0] == '*' {
		return nil
	}
	if string(r.Method) != "CONNECT" {
		i := bytes.Index(t, []byte("://"))
		if i <= 0 {
			return nil
		}
		t = t[i+3:]
		if j := bytes.IndexAny(t, "/?#"); j >= 0 {
			t = t[:j]
		}
	}
	if i := bytes.LastIndexByte(t, '@'); i >= 0 {
		t = t[i+1:]
	}
	if len(t) == 0 {
		return nil
	}
	return t[:len(t):len(t)]
}
