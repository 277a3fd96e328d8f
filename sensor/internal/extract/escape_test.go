package extract

import (
	"bytes"
	"strconv"
	"testing"
)

func TestAppendName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{".", ""},
		{"example.com", "example.com"},
		{"DNL-01.Geo.Kaspersky.COM.", "dnl-01.geo.kaspersky.com"},
		{"a..", `a\046`}, // only one dot removed; the one left is escaped
		{"..", `\046`},
		{"a.b.", "a.b"},
		{"a b", `a\032b`},
		{"a\x00b", `a\000b`},
		{"\x01", `\001`},
		{`a\b`, `a\092b`},
		{"\x1b[31mred", `\027[31mred`},
		{"\x7f\x80\xff", `\127\128\255`},
		{"xn--80ak6aa92e.com", "xn--80ak6aa92e.com"},
		{"ÄÖ.de", `\195\132\195\150.de`}, // non-ASCII is escaped, not lower-cased
		{`"quoted"`, `"quoted"`},
		{"_dmarc.Example.", "_dmarc.example"},
		{"*.example", "*.example"},
	}
	for _, tt := range tests {
		if got := string(AppendName(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("AppendName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := string(AppendName([]byte("name="), []byte("A."))); got != "name=a" {
		t.Errorf("AppendName does not append: %q", got)
	}
}

func TestAppendText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"Kaspersky Lab Updater", 100, "Kaspersky Lab Updater"},
		{"a\\b", 10, `a\\b`},
		{"tab\there", 100, `tab\x09here`},
		{"line\r\nnext", 100, `line\x0d\x0anext`},
		{"\x1b[2J\x00\x7f\x80\xff", 100, `\x1b[2J\x00\x7f\x80\xff`},
		{"Mozilla/5.0 (Windows NT 10.0)", 7, "Mozilla..."},
		{"exact", 5, "exact"},
		{"abc", 0, "..."},
		{"abc", -1, "..."},
		{"", 0, ""},
		{"ü", 1, `\xc3...`},
	}
	for _, tt := range tests {
		if got := string(AppendText(nil, []byte(tt.in), tt.max)); got != tt.want {
			t.Errorf("AppendText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	if got := string(AppendText([]byte("ua="), []byte("x\n"), 10)); got != `ua=x\x0a` {
		t.Errorf("AppendText does not append: %q", got)
	}
}

// unescapeName reverses the \DDD escapes of AppendName.
func unescapeName(t *testing.T, s []byte) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+3 >= len(s) {
			t.Fatalf("short escape in %q", s)
		}
		v, err := strconv.Atoi(string(s[i+1 : i+4]))
		if err != nil || v > 255 {
			t.Fatalf("bad escape in %q", s)
		}
		out = append(out, byte(v))
		i += 3
	}
	return out
}

// unescapeText reverses the escapes of AppendText.
func unescapeText(t *testing.T, s []byte) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(string(s[i+2:i+4]), 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			out = append(out, byte(v))
			i += 3
		default:
			t.Fatalf("bad escape in %q", s)
		}
	}
	return out
}

func FuzzAppendName(f *testing.F) {
	for _, s := range []string{"", ".", "a..", "DNL-01.Geo.Kaspersky.COM.", "a\x00b\\c", "\xff\x7f ", "xn--80ak6aa92e.com"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, name []byte) {
		out := AppendName(nil, name)
		for _, c := range out {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("non-printable byte %#x in %q", c, out)
			}
		}
		if len(out) > 0 && out[len(out)-1] == '.' {
			t.Fatalf("output ends in a dot: %q", out)
		}
		// Decoding gives back the input, lower-cased, minus one trailing dot.
		want := bytes.TrimSuffix(bytes.Clone(name), []byte("."))
		for i, c := range want {
			if 'A' <= c && c <= 'Z' {
				want[i] = c + 'a' - 'A'
			}
		}
		if got := unescapeName(t, out); !bytes.Equal(got, want) {
			t.Fatalf("round trip of %q: got %q via %q", name, got, out)
		}
		// Normalised output without escapes is a fixed point.
		if bytes.IndexByte(out, '\\') < 0 {
			if again := AppendName(nil, out); !bytes.Equal(again, out) {
				t.Fatalf("not idempotent: %q -> %q -> %q", name, out, again)
			}
		}
		// Appending keeps dst.
		if got := AppendName([]byte("p:"), name); string(got[:2]) != "p:" || !bytes.Equal(got[2:], out) {
			t.Fatalf("append broke dst: %q", got)
		}
	})
}

func FuzzAppendText(f *testing.F) {
	f.Add([]byte("Kaspersky Lab Updater 21.3"), 100)
	f.Add([]byte("a\\b\r\n\x00\xff"), 4)
	f.Add([]byte("abc"), 0)
	f.Add([]byte("abc"), -5)
	f.Fuzz(func(t *testing.T, text []byte, limit int) {
		limit %= 1 << 16 // keep the expected-length arithmetic below far from overflow
		out := AppendText(nil, text, limit)
		for _, c := range out {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("non-printable byte %#x in %q", c, out)
			}
		}
		taken := text
		if len(text) > max(limit, 0) {
			taken = text[:max(limit, 0)]
			if !bytes.HasSuffix(out, []byte("...")) {
				t.Fatalf("cut text without ...: %q", out)
			}
			out = out[:len(out)-3]
		}
		if len(out) > 4*len(taken) {
			t.Fatalf("output %d bytes for %d input bytes", len(out), len(taken))
		}
		if got := unescapeText(t, out); !bytes.Equal(got, taken) {
			t.Fatalf("round trip of %q: got %q via %q", taken, got, out)
		}
	})
}

func BenchmarkAppendName(b *testing.B) {
	name := []byte("DNL-01.Geo.Kaspersky.COM.")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendName(dst[:0], name)
	}
}

func BenchmarkAppendText(b *testing.B) {
	ua := []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 \x00\\")
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendText(dst[:0], ua, 256)
	}
}
