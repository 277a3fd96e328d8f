package capture

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// udp53 is `tcpdump -ddd -y EN10MB 'udp port 53'` (libpcap 1.10).
const udp53 = `20
40 0 0 12
21 0 6 34525
48 0 0 20
21 0 15 17
40 0 0 54
21 12 0 53
40 0 0 56
21 10 11 53
21 0 10 2048
48 0 0 23
21 0 8 17
40 0 0 20
69 6 0 8191
177 0 0 14
72 0 0 14
21 2 0 53
72 0 0 16
21 0 1 53
6 0 0 262144
6 0 0 0
`

func TestParseRawBPF(t *testing.T) {
	f, err := ParseRawBPF(udp53)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 20 || f[0] != (bpf.RawInstruction{Op: 40, K: 12}) || f[18].K != 262144 {
		t.Errorf("program %v", f)
	}
	// The comma form (iptables' bpf match).
	g, err := ParseRawBPF(strings.ReplaceAll(strings.TrimSpace(udp53), "\n", ","))
	if err != nil || len(g) != 20 {
		t.Errorf("comma form: %v %v", g, err)
	}
	if c := f.clampSnaplen(1500); c[18].K != 1500 || c[19].K != 0 || f[18].K != 262144 {
		t.Errorf("clamped: %v, original %v", c[18:], f[18:])
	}
	if !IsRawBPF(udp53) || IsRawBPF("udp port 53") || IsRawBPF("") {
		t.Error("IsRawBPF")
	}
}

func TestParseRawBPFErrors(t *testing.T) {
	for _, tc := range []struct{ prog, want string }{
		{"", "empty program"},
		{"2\n6 0 0 1", "says 2 instructions, has 1"},
		{"1\n6 0 0", "want 4 numbers"},
		{"1\n6 0 0 99999999999", "not a 32-bit number"},
		{"1\n6 0 300 1", "not a 8-bit number"},
		{"2\n21 0 5 1\n6 0 0 1", "jumps past the end"},
		{"2\n5 0 0 7\n6 0 0 1", "jumps past the end"},
		{"1\n40 0 0 12", "last instruction is not a return"},
		{"x\n6 0 0 1", "not the instruction count"},
	} {
		_, err := ParseRawBPF(tc.prog)
		if err == nil || !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.prog, err, tc.want)
		}
	}
}

// TestCompileFilter: expressions are compiled by libpcap (pcap build) or
// tcpdump; a bad one is an ErrBadFilter naming the reason.
func TestCompileFilter(t *testing.T) {
	if f, err := CompileFilter("  ", layers.LinkTypeEthernet, 1500); f != nil || err != nil {
		t.Errorf("empty filter: %v %v", f, err)
	}
	if f, err := CompileFilter(udp53, layers.LinkTypeEthernet, 1500); err != nil || len(f) != 20 || f[18].K != 1500 {
		t.Errorf("raw program: %v %v", f, err)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil && !HavePcap {
		t.Skip("tcpdump not installed and no libpcap: expressions cannot be compiled here")
	}
	f, err := CompileFilter("udp port 53", layers.LinkTypeEthernet, 1500)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 20 || f[18].K != 1500 {
		t.Errorf("udp port 53: %v", f)
	}
	if f, err := CompileFilter("ip6 and tcp", layers.LinkTypeRaw, 65535); err != nil || len(f) == 0 {
		t.Errorf("raw link type: %v %v", f, err)
	}
	for _, tc := range []struct{ expr, want string }{
		{"bogus filter", "syntax error"},
		{"port 99999", "99999"},
		{"tcp[13] &", "syntax error"},
	} {
		_, err := CompileFilter(tc.expr, layers.LinkTypeEthernet, 65535)
		if err == nil || !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.expr) {
			t.Errorf("%q: %v, want an error with %q", tc.expr, err, tc.want)
		}
	}
}
