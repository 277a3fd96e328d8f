package testsvc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a loopback port that nothing used a moment ago, on
// network "udp" or (anything else) "tcp". It can be taken in the meantime:
// it is for a program the test starts, which needs its port on its command
// line or in its configuration.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:PORT" with a TCP port from FreePort: an
// address to listen on, or one where nothing listens.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t, "tcp"))
}

// listening tells whether something listens on the loopback port of
// network ("tcp" or "udp"), by /proc/net: a probe connection would be a
// message to a syslog receiver.
func listening(network string, port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	b, err := os.ReadFile("/proc/net/" + network)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && (network == "udp" || f[3] == "0A") {
			return true
		}
	}
	return false
}

// Program returns the path of the program name, looked up in PATH; where
// it is not installed, it skips the test with the message skip (which
// should say what to install).
func Program(t testing.TB, name, skip string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skip(skip)
	}
	return p
}
