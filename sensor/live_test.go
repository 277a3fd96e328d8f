package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
)

// TestLiveFlagErrors: wrong live capture flags are usage errors (exit 2)
// that say what is wrong, before any socket is opened (no root needed).
func TestLiveFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "give a capture file (-r, --read FILE) or an interface to capture on (-i, --interface IFACE)"},
		{[]string{"inspect"}, "give a capture file (-r, --read FILE) or an interface to capture on (-i, --interface IFACE)"},
		{[]string{"run", "-r", demo, "-i", "lo"}, "-r and -i are mutually exclusive"},
		{[]string{"run", "-r", demo, "--capture.filter", "udp"}, "--capture.filter applies to live capture"},
		{[]string{"run", "-r", demo, "--run-as", "nobody"}, "--run-as applies to live capture"},
		{[]string{"run", "-i", "lo", "--capture.method", "netmap"}, "enum value must be one of afpacket,pcap"},
		{[]string{"run", "-i", "lo", "--capture.snaplen", "10"}, "--capture.snaplen 10"},
		{[]string{"run", "-i", "lo", "--capture.ring-size", "1KiB"}, "--capture.ring-size"},
		{[]string{"run", "-i", "lo", "--capture.block-timeout", "0s"}, "--capture.block-timeout"},
		{[]string{"run", "-i", "lo", "--capture.fanout-group", "65536"}, "--capture.fanout-group"},
		{[]string{"run", "-i", "lo", "-i", "lo"}, "-i lo: given twice"},
		{[]string{"run", "-i", "phnoexist0"}, "-i phnoexist0: no such network interface"},
		{[]string{"run", "-i", "lo", "--run-as", "root"}, "is root: nothing would be dropped"},
		{[]string{"run", "-i", "lo", "--run-as", "no-such-user-here"}, "no such user"},
		{[]string{"run", "-i", "lo", "--capture.filter", "1\n40 0 0 12"}, "bad capture filter: program: the last instruction is not a return"},
		{[]string{"run", "-i", "lo", "--workers", "0"}, "--workers 0"},
	} {
		code, _, stderr := runCLI(t, append(tc.args, "--log.level", "error")...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	code, _, stderr := runCLI(t, "run", "-i", "lo", "--capture.method", "pcap", "--log.level", "error")
	if !capture.HavePcap && (code != exitUsage || !strings.Contains(stderr, "built without libpcap")) {
		t.Errorf("--capture.method pcap without the pcap tag: exit %d, %q", code, stderr)
	}
}

// TestLiveFilterExpressionErrors: an expression the compiler refuses is a
// usage error with the compiler's reason (needs tcpdump or libpcap).
func TestLiveFilterExpressionErrors(t *testing.T) {
	if _, err := capture.CompileFilter("udp", 1, 1500); err != nil {
		t.Skipf("no filter compiler here: %v", err)
	}
	for expr, want := range map[string]string{
		"bogus filter": "syntax error",
		"port 99999":   "99999",
	} {
		code, _, stderr := runCLI(t, "run", "-i", "lo", "--capture.filter", expr, "--log.level", "error")
		if code != exitUsage || !strings.Contains(stderr, "bad capture filter") || !strings.Contains(stderr, want) {
			t.Errorf("%q: exit %d, %q", expr, code, stderr)
		}
	}
}

func TestSDNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := sdNotify("READY=1"); sent || err != nil {
		t.Errorf("no NOTIFY_SOCKET: %v %v", sent, err)
	}
	path := filepath.Join(t.TempDir(), "notify")
	abstract := fmt.Sprintf("@phonehome-test-%d", time.Now().UnixNano())
	for _, name := range []string{path, abstract} {
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		if sent, err := sdNotify("READY=1\nSTATUS=capturing"); !sent || err != nil {
			t.Fatalf("%s: %v %v", name, sent, err)
		}
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		conn.Close()
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=capturing" {
			t.Errorf("%s: got %q %v", name, buf[:n], err)
		}
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if _, err := sdNotify("READY=1"); err == nil {
		t.Error("vsock address accepted")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if _, err := sdNotify("READY=1"); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}
