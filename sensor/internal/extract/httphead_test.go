package extract

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// httpSummary flattens an HTTPRequest for table comparisons; the Has*
// fields tell nil from empty.
type httpSummary struct {
	Method, Target, Version string
	Host                    string
	HasHost                 bool
	UA                      string
	HasUA                   bool
	Complete                bool
	HeadLen                 int
	HasVersion              bool
}

func summarizeHTTP(r *HTTPRequest) httpSummary {
	return httpSummary{
		Method: string(r.Method), Target: string(r.Target), Version: string(r.Version), HasVersion: r.Version != nil,
		Host: string(r.Host), HasHost: r.Host != nil, UA: string(r.UserAgent), HasUA: r.UserAgent != nil,
		Complete: r.Complete, HeadLen: r.HeadLen,
	}
}

const kasperskyGet = "GET /diffs/bases/av/kdb/i386/kdb-i386-0607g.xml.dif HTTP/1.1\r\n" +
	"Host: dnl-03.geo.kaspersky.com\r\n" +
	"User-Agent: Kaspersky Lab Updater 21.3.10.391\r\n" +
	"Accept: */*\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func TestParseHTTPRequest(t *testing.T) {
	manyHeaders := "GET / HTTP/1.1\r\n" + strings.Repeat("X-Pad: 1\r\n", maxHeaderLines) + "Host: late.example\r\n\r\n"
	exactlyMax := "GET / HTTP/1.1\r\n" + strings.Repeat("X-Pad: 1\r\n", maxHeaderLines-1) + "Host: h\r\n\r\n"
	longHead := "GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", maxHeadLen) + "\r\nHost: far.example\r\n\r\n"
	tests := []struct {
		name string
		in   string
		err  error
		want httpSummary
	}{
		{
			name: "kaspersky updater",
			in:   kasperskyGet,
			want: httpSummary{Method: "GET", Target: "/diffs/bases/av/kdb/i386/kdb-i386-0607g.xml.dif", Version: "HTTP/1.1", HasVersion: true,
				Host: "dnl-03.geo.kaspersky.com", HasHost: true, UA: "Kaspersky Lab Updater 21.3.10.391", HasUA: true,
				Complete: true, HeadLen: len(kasperskyGet)},
		},
		{
			name: "lower-case names, bare LF, OWS",
			in:   "POST /ksn HTTP/1.0\nhost:\t ksn.example \t\nuser-agent:x\n\n",
			want: httpSummary{Method: "POST", Target: "/ksn", Version: "HTTP/1.0", HasVersion: true,
				Host: "ksn.example", HasHost: true, UA: "x", HasUA: true, Complete: true, HeadLen: -1},
		},
		{
			name: "mixed case names",
			in:   "GET / HTTP/1.1\r\nHOST: a.example\r\nUsEr-AgEnT: b\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true,
				Host: "a.example", HasHost: true, UA: "b", HasUA: true, Complete: true, HeadLen: -1},
		},
		{
			name: "ipv6 host with port",
			in:   "GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true,
				Host: "[::1]:8000", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "connect",
			in:   "CONNECT secure.newegg.com:443 HTTP/1.1\r\nHost: secure.newegg.com:443\r\nProxy-Connection: keep-alive\r\n\r\n",
			want: httpSummary{Method: "CONNECT", Target: "secure.newegg.com:443", Version: "HTTP/1.1", HasVersion: true,
				Host: "secure.newegg.com:443", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "missing host",
			in:   "GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/x", Version: "HTTP/1.0", HasVersion: true, Complete: true, HeadLen: -1},
		},
		{
			name: "empty host value is present",
			in:   "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "first host wins",
			in:   "GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, Host: "one", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "split after host",
			in:   "GET / HTTP/1.1\r\nHost: a.example\r\nUser-Ag",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, Host: "a.example", HasHost: true},
		},
		{
			name: "split inside host value",
			in:   "GET / HTTP/1.1\r\nAccept: */*\r\nHost: a.exa",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true},
		},
		{
			name: "split before the final CRLF",
			in:   "GET / HTTP/1.1\r\nHost: a\r\n\r",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, Host: "a", HasHost: true},
		},
		{
			name: "split inside the request line",
			in:   "GET /diffs/ba",
			want: httpSummary{Method: "GET", Target: "/diffs/ba"},
		},
		{
			name: "split inside the version",
			in:   "GET / HTTP/1.1\r",
			want: httpSummary{Method: "GET", Target: "/"},
		},
		{
			name: "obs-fold ignored, not appended",
			in:   "GET / HTTP/1.1\r\nX-A: 1\r\n  Host: folded.example\r\nHost: real.example\r\n\tmore\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true,
				Host: "real.example", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "space before colon is not Host",
			in:   "GET / HTTP/1.1\r\nHost : evil.example\r\nno colon line\r\n: empty name\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, Complete: true, HeadLen: -1},
		},
		{
			name: "pipelined second request ignored",
			in:   "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\nUser-Agent: u\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/1", Version: "HTTP/1.1", HasVersion: true, Host: "a", HasHost: true, Complete: true, HeadLen: 28},
		},
		{
			name: "body ignored",
			in:   "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nHost: not.a.header\r\n",
			want: httpSummary{Method: "POST", Target: "/", Version: "HTTP/1.1", HasVersion: true, Complete: true, HeadLen: 39},
		},
		{
			name: "raw bytes in host kept raw",
			in:   "GET / HTTP/1.1\r\nHost: a\x00\x1b[2J\xff\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true,
				Host: "a\x00\x1b[2J\xff", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "unknown method token accepted by the parser",
			in:   "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n",
			want: httpSummary{Method: "M-SEARCH", Target: "*", Version: "HTTP/1.1", HasVersion: true,
				Host: "239.255.255.250:1900", HasHost: true, Complete: true, HeadLen: -1},
		},
		{
			name: "header line bound",
			in:   manyHeaders,
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true},
		},
		{
			name: "exactly the bound",
			in:   exactlyMax,
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true, Host: "h", HasHost: true,
				Complete: true, HeadLen: len(exactlyMax)},
		},
		{
			name: "8 KiB bound",
			in:   longHead,
			want: httpSummary{Method: "GET", Target: "/", Version: "HTTP/1.1", HasVersion: true},
		},

		{name: "empty", in: "", err: ErrNotHTTP},
		{name: "method cut", in: "GE", err: ErrNotHTTP},
		{name: "tls", in: "\x16\x03\x01\x02\x00\x01", err: ErrNotHTTP},
		{name: "http/0.9", in: "GET /\r\n", err: ErrNotHTTP},
		{name: "response", in: "HTTP/1.1 200 OK\r\n\r\n", err: ErrNotHTTP},
		{name: "two spaces", in: "GET  / HTTP/1.1\r\n\r\n", err: ErrNotHTTP},
		{name: "bad version", in: "GET / HTTP/1.10\r\n\r\n", err: ErrNotHTTP},
		{name: "lower-case version", in: "GET / http/1.1\r\n\r\n", err: ErrNotHTTP},
		{name: "trailing space", in: "GET / HTTP/1.1 \r\n\r\n", err: ErrNotHTTP},
		{name: "control byte in target", in: "GET /\x01 HTTP/1.1\r\n\r\n", err: ErrNotHTTP},
		{name: "partial line with bad version", in: "GET / HTTX", err: ErrNotHTTP},
		{name: "partial line too long for version", in: "GET / HTTP/1.1\r\r", err: ErrNotHTTP},
		{name: "request line over 8 KiB: the part seen", in: "GET /" + strings.Repeat("a", maxHeadLen) + " HTTP/1.1\r\n\r\n",
			want: httpSummary{Method: "GET", Target: "/" + strings.Repeat("a", maxHeadLen-5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := HTTPRequest{Host: []byte("stale")}
			err := ParseHTTPRequest([]byte(tt.in), &r)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			want := tt.want
			if want.HeadLen < 0 {
				want.HeadLen = len(tt.in) // the whole input is the head
			}
			if got := summarizeHTTP(&r); got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestHTTPRequestAliasing(t *testing.T) {
	p := []byte(kasperskyGet)
	var r HTTPRequest
	if err := ParseHTTPRequest(p, &r); err != nil {
		t.Fatal(err)
	}
	if !aliases(p, r.Host) || !aliases(p, r.UserAgent) || !aliases(p, r.Target) {
		t.Fatal("results do not alias the input")
	}
	before := bytes.Clone(p)
	_ = append(r.Method, "XX"...)
	_ = append(r.Host, "XX"...)
	_ = append(r.UserAgent, "XX"...)
	if !bytes.Equal(p, before) {
		t.Fatal("append to a result modified the input")
	}
	r.Reset()
	if r.Host != nil || r.Complete || r.HeadLen != 0 {
		t.Fatalf("Reset left %+v", r)
	}
}

func TestIsRequestStart(t *testing.T) {
	yes := []string{"GET /", "POST /", "HEAD /", "PUT /", "DELETE /", "OPTIONS *", "CONNECT h:443", "TRACE /",
		"PATCH /", "PROPFIND /", "PROPPATCH /", "MKCOL /", "COPY /", "MOVE /", "LOCK /", "UNLOCK /", "GET "}
	no := []string{"", "GET", "GET/", "get /", "GETS /", "POS /", "PRI * HTTP/2.0", "HTTP/1.1 200 OK",
		"\x16\x03\x01\x02\x00\x01", "CONNECTX", "M-SEARCH * HTTP/1.1", " GET /"}
	for _, s := range yes {
		if !IsRequestStart([]byte(s)) {
			t.Errorf("IsRequestStart(%q) = false", s)
		}
	}
	for _, s := range no {
		if IsRequestStart([]byte(s)) {
			t.Errorf("IsRequestStart(%q) = true", s)
		}
	}
}

func FuzzParseHTTPRequest(f *testing.F) {
	f.Add([]byte(kasperskyGet))
	f.Add([]byte("POST /ksn HTTP/1.0\nhost:\t ksn.example \t\nuser-agent:x\n\n"))
	f.Add([]byte("CONNECT secure.newegg.com:443 HTTP/1.1\r\nHost: secure.newegg.com:443\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nX-A: 1\r\n  Host: folded.example\r\nHost: [::1]:8000\r\n\r\nGET /2 HTTP/1.1\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.exa"))
	f.Add([]byte("GET /diffs/ba"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var r HTTPRequest
		err := ParseHTTPRequest(p, &r)
		if err != nil {
			if err != ErrNotHTTP {
				t.Fatalf("unexpected error %v", err)
			}
			if summarizeHTTP(&r) != (httpSummary{}) {
				t.Fatalf("r not reset after error: %+v", r)
			}
			return
		}
		if len(r.Method) == 0 {
			t.Fatal("parsed without a method")
		}
		for _, v := range [][]byte{r.Method, r.Target, r.Version, r.Host, r.UserAgent} {
			if bytes.IndexByte(v, '\n') >= 0 {
				t.Fatalf("field with LF: %q", v)
			}
		}
		if r.Version == nil && (r.Complete || r.Host != nil || r.UserAgent != nil) {
			t.Fatalf("headers without a request line: %+v", summarizeHTTP(&r))
		}
		if !r.Complete {
			if r.HeadLen != 0 {
				t.Fatalf("HeadLen %d without Complete", r.HeadLen)
			}
		} else {
			if r.HeadLen <= 0 || r.HeadLen > len(p) || r.HeadLen > maxHeadLen || p[r.HeadLen-1] != '\n' {
				t.Fatalf("HeadLen %d of %d", r.HeadLen, len(p))
			}
			// The head alone parses the same.
			var r2 HTTPRequest
			if err := ParseHTTPRequest(p[:r.HeadLen], &r2); err != nil || summarizeHTTP(&r2) != summarizeHTTP(&r) {
				t.Fatalf("head alone: %v %+v, want %+v", err, summarizeHTTP(&r2), summarizeHTTP(&r))
			}
		}
		// Any prefix that keeps the method and its space still parses.
		for _, k := range []int{len(r.Method) + 1, len(p) / 2, len(p) - 1} {
			if k <= len(r.Method) || k >= len(p) {
				continue
			}
			var r2 HTTPRequest
			if err := ParseHTTPRequest(p[:k], &r2); err != nil {
				t.Fatalf("prefix %d of parsable input: %v", k, err)
			}
		}
	})
}

func BenchmarkParseHTTPRequest(b *testing.B) {
	p := []byte(kasperskyGet)
	var r HTTPRequest
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseHTTPRequest(p, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsRequestStart(b *testing.B) {
	inputs := [][]byte{[]byte(kasperskyGet), []byte("PROPFIND / HTTP/1.1"), {0x16, 3, 1, 2, 0, 1}}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, p := range inputs {
			if IsRequestStart(p) {
				n++
			}
		}
	}
	_ = n
}

func TestTargetAuthority(t *testing.T) {
	tests := []struct{ method, target, want string }{
		{"GET", "/index.html", ""},
		{"OPTIONS", "*", ""},
		{"GET", "http://proxied.example/x?y", "proxied.example"},
		{"GET", "http://user:pw@proxied.example:8080", "proxied.example:8080"},
		{"GET", "http://[2001:db8::1]:8080/a", "[2001:db8::1]:8080"},
		{"CONNECT", "tunnel.example:443", "tunnel.example:443"},
		{"CONNECT", "[fd99::2]:443", "[fd99::2]:443"},
		{"GET", "nonsense", ""},
		{"GET", "http://", ""},
	}
	for _, tt := range tests {
		r := HTTPRequest{Method: []byte(tt.method), Target: []byte(tt.target)}
		if got := string(TargetAuthority(&r)); got != tt.want {
			t.Errorf("%s %s: got %q, want %q", tt.method, tt.target, got, tt.want)
		}
	}
}
