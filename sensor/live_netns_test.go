package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// Helpers for the tests that capture live between two network namespaces
// joined by a veth pair (live_e2e_test.go, live_bench_test.go).

// needNetns skips the test unless it runs as root with iproute2.
func needNetns(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: live capture in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("live capture test: needs root (network namespaces, AF_PACKET); run go test as root")
	}
	testsvc.Program(t, "ip", "live capture test: ip (iproute2) not found")
}

// needTools skips the test unless every program is on PATH.
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		testsvc.Program(t, n, "live capture test: "+n+" not found (apt-get install it; see DEB_PACKAGES in the Makefile)")
	}
}

// vethPair is two network namespaces, "client" and "server", joined by a
// veth pair: veth0 (C4) in the client one, veth1 (S4) in the server one.
// Neither has any other interface than lo, nor a route out.
type vethPair struct {
	t        testing.TB
	nsC, nsS string
	c4, s4   string
}

const (
	vethC = "veth0"
	vethS = "veth1"
)

// newVethPair makes the namespaces; they go (and everything in them) when
// the test ends, failed or not. The test is skipped where namespaces
// cannot be made.
func newVethPair(t testing.TB, tag string) *vethPair {
	t.Helper()
	needNetns(t)
	id := fmt.Sprintf("phl-%s-%d", tag, os.Getpid())
	p := &vethPair{t: t, nsC: id + "-c", nsS: id + "-s", c4: "10.97.0.1", s4: "10.97.0.2"}
	p.del()
	if out, err := exec.Command("ip", "netns", "add", p.nsC).CombinedOutput(); err != nil {
		t.Skipf("live capture test: ip netns unavailable here: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(p.del)
	p.ip("netns", "add", p.nsS)
	p.ip("link", "add", vethC, "netns", p.nsC, "type", "veth", "peer", "name", vethS, "netns", p.nsS)
	for _, x := range [][3]string{{p.nsC, vethC, p.c4}, {p.nsS, vethS, p.s4}} {
		p.ip("-n", x[0], "link", "set", "lo", "up")
		p.ip("-n", x[0], "addr", "add", x[2]+"/24", "dev", x[1])
		p.ip("-n", x[0], "link", "set", x[1], "up")
		// What goes on the wire, not GSO super-packets (when ethtool is there).
		if _, err := exec.LookPath("ethtool"); err == nil {
			exec.Command("ip", "netns", "exec", x[0], "ethtool", "-K", x[1], "tso", "off", "gso", "off", "gro", "off").Run()
		}
	}
	return p
}

func (p *vethPair) del() {
	for _, ns := range []string{p.nsC, p.nsS} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (p *vethPair) ip(args ...string) {
	p.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// cmd returns a command that runs in namespace ns.
func (p *vethPair) cmd(ctx context.Context, ns string, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// bgProc is a long-running command started by vethPair.background.
type bgProc struct {
	cmd  *exec.Cmd
	out  *testsvc.Buffer
	done chan struct{} // closed once it has exited; then err is set
	err  error
}

// wait waits up to d for the process to exit and returns its exit error.
func (b *bgProc) wait(d time.Duration) error {
	select {
	case <-b.done:
		return b.err
	case <-time.After(d):
		return fmt.Errorf("still running after %s", d)
	}
}

// background starts a long-running command in namespace ns; it is killed
// when the test ends. Its output goes to a buffer.
func (p *vethPair) background(ns string, env []string, name string, args ...string) *bgProc {
	p.t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	c.Env = append(os.Environ(), env...)
	b := &bgProc{cmd: c, out: &testsvc.Buffer{}, done: make(chan struct{})}
	c.Stdout, c.Stderr = b.out, b.out
	if err := c.Start(); err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	go func() { b.err = c.Wait(); close(b.done) }()
	p.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			c.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitListen waits until something listens on proto ("tcp"/"udp") port
// in namespace ns.
func (p *vethPair) waitListen(ns, proto string, port int, what *testsvc.Buffer) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-Hln", "--"+proto, fmt.Sprintf("sport = :%d", port)).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("nothing listens on %s/%d in %s; output:\n%s", proto, port, ns, what.String())
}

// buildPhonehome builds the sensor into dir, with the given build tags.
func buildPhonehome(t testing.TB, dir string, tags string) string {
	t.Helper()
	bin := filepath.Join(dir, "phonehome")
	args := []string{"build", "-o", bin}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if tags != "" {
		bin += "-" + tags
		args = []string{"build", "-tags", tags, "-o", bin}
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// havePcapBuild tells whether a -tags pcap build can be made here (cgo and
// libpcap's header), and why not.
func havePcapBuild() (bool, string) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return false, "no C compiler (gcc) for the cgo pcap build"
	}
	if _, err := os.Stat("/usr/include/pcap/pcap.h"); err != nil {
		return false, "libpcap-dev is not installed (/usr/include/pcap/pcap.h)"
	}
	return true, ""
}
