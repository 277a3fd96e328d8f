package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveContact is a contact a real client makes in TestLiveCapture and the
// alert phonehome must raise for it.
type liveContact struct {
	client string // what makes it (for messages)
	proto  string // network.protocol of the alert
	name   string // dns.question.name or tls.client.server_name
}

// TestLiveCapture: phonehome captures live on the client end of a veth
// pair (AF_PACKET with two fanout sockets, then libpcap when a pcap build
// can be made) while real clients — dig against dnsmasq, curl, openssl
// s_client, quic-go (tools/realcap), Chromium when installed — contact
// Kaspersky names served in the other namespace. Each contact must give an
// alert naming the client's address; SIGTERM ends the run with status 0,
// the summary and systemd's READY=1 then STOPPING=1.
func TestLiveCapture(t *testing.T) {
	needNetns(t)
	needTools(t, "dnsmasq", "dig", "curl", "openssl", "ss")
	start := time.Now()
	dir := t.TempDir()
	bin := buildPhonehome(t, dir, "")
	realcap := filepath.Join(dir, "realcap")
	build := exec.Command("go", "build", "-o", realcap, ".")
	build.Dir = filepath.Join("..", "tools", "realcap")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tools/realcap: %v\n%s", err, out)
	}
	pcapBin, whyNot := "", ""
	if ok, why := havePcapBuild(); ok {
		pcapBin = buildPhonehome(t, dir, "pcap")
	} else {
		whyNot = why
	}
	t.Logf("built in %s", time.Since(start).Round(time.Millisecond))

	p := newVethPair(t, "e2e")
	names := []string{"dnl-05.geo.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "activation-v2.kaspersky.com", "ds.kaspersky.com", "support.kaspersky.com"}
	dnsArgs := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=" + p.s4, "--user=root", "--group=root", "--pid-file=", "--log-facility=-"}
	for _, n := range names {
		dnsArgs = append(dnsArgs, fmt.Sprintf("--address=/%s/%s", n, p.s4))
	}
	dnsmasq := p.background(p.nsS, nil, "dnsmasq", dnsArgs...)
	p.waitListen(p.nsS, "udp", 53, dnsmasq.out)
	srv := p.background(p.nsS, []string{"QUIC_GO_DISABLE_GSO=true", "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true"},
		realcap, "server", "-addr", p.s4+":443", "-http", "")
	p.waitListen(p.nsS, "tcp", 443, srv.out)
	p.waitListen(p.nsS, "udp", 443, srv.out)

	t.Run("afpacket", func(t *testing.T) {
		liveScenario(t, p, bin, realcap, []string{"--workers", "2", "--run-as", "nobody"})
	})
	t.Run("cap_net_raw-only", func(t *testing.T) {
		// Not root, one capability: what `setcap cap_net_raw=ep` or a
		// unit with AmbientCapabilities=CAP_NET_RAW gives (util-linux
		// setpriv). The alerts directory is world-writable.
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv not found (util-linux)")
		}
		// A directory nobody can reach (t.TempDir's parent is 0700).
		open, err := os.MkdirTemp("", "phnetraw")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(open) })
		os.Chmod(open, 0o755)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		copyBin := filepath.Join(open, "phonehome")
		if err := os.WriteFile(copyBin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		wrapper := filepath.Join(open, "phonehome-netraw")
		script := "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw " + copyBin + " \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		liveScenario(t, p, wrapper, realcap, []string{"--workers", "2"})
	})
	t.Run("pcap", func(t *testing.T) {
		if pcapBin == "" {
			t.Skip("no pcap build: " + whyNot)
		}
		liveScenario(t, p, pcapBin, realcap, []string{"--capture.method", "pcap", "--workers", "2", "--capture.filter", "tcp or udp"})
	})
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// liveScenario runs phonehome with extra flags in the client namespace,
// makes the contacts and checks what phonehome reported.
func liveScenario(t *testing.T, p *vethPair, bin, realcap string, extra []string) {
	// A directory the user of --run-as can write to.
	out, err := os.MkdirTemp("", "phlive")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(out, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	os.Chmod(notifyPath, 0o777)
	states := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				close(states)
				return
			}
			states <- string(buf[:n])
		}
	}()

	alerts := filepath.Join(out, "alerts.json")
	args := append([]string{"run", "-i", vethC, "--storage.path", "", "--alerts.out", alerts, "--log.level", "debug"}, extra...)
	ph := p.background(p.nsC, []string{"NOTIFY_SOCKET=" + notifyPath}, bin, args...)
	select {
	case s, ok := <-states:
		if !ok || !strings.Contains(s, "READY=1") {
			t.Fatalf("first notification %q, want READY=1; phonehome:\n%s", s, ph.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no READY=1 from phonehome; its output:\n%s", ph.out.String())
	}
	if netRawOnly := strings.HasSuffix(bin, "-netraw"); netRawOnly || strings.Contains(strings.Join(extra, " "), "--run-as nobody") {
		wantEff := "0000000000000000" // --run-as drops every capability once the sockets are open
		if netRawOnly {
			wantEff = "0000000000002000" // CAP_NET_RAW, nothing else
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ph.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
				if f[1] == "0" || f[2] == "0" || f[3] == "0" {
					t.Errorf("after --run-as nobody: %s", line)
				}
			}
			if strings.HasPrefix(line, "CapEff:") && strings.TrimSpace(strings.TrimPrefix(line, "CapEff:")) != wantEff {
				t.Errorf("capabilities: %s, want %s", line, wantEff)
			}
		}
	}

	want := []liveContact{
		{"dig", "dns", "dnl-05.geo.kaspersky.com"},
		{"curl", "tls", "ksn-url-geo.kaspersky-labs.com"},
		{"openssl s_client", "tls", "activation-v2.kaspersky.com"},
		{"quic-go", "quic", "ds.kaspersky.com"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	client := func(name string, args ...string) {
		c := p.cmd(ctx, p.nsC, name, args...)
		c.Env = append(os.Environ(), "QUIC_GO_DISABLE_GSO=true", "HOME="+out)
		b, err := c.CombinedOutput()
		if err != nil {
			// The server may refuse what follows the hello: the checks
			// on the alerts decide.
			t.Logf("%s: %v; last output: %s", name, err, lastLines(string(b), 3))
		}
	}
	client("dig", "+tries=2", "+time=2", "@"+p.s4, "dnl-05.geo.kaspersky.com", "A")
	// SIGHUP reloads the rules and GeoIP without closing the capture:
	// every contact after it must still be seen (checked below).
	if err := ph.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	client("curl", "-sS", "-k", "--max-time", "5", "-o", "/dev/null", "--resolve", "ksn-url-geo.kaspersky-labs.com:443:"+p.s4, "https://ksn-url-geo.kaspersky-labs.com/")
	client("openssl", "s_client", "-connect", p.s4+":443", "-servername", "activation-v2.kaspersky.com")
	client(realcap, "client", "-mode", "h3", "-sni", "ds.kaspersky.com", "-addr", p.s4+":443")
	if chromium, err := exec.LookPath("chromium"); err == nil && os.Getenv("PHONEHOME_E2E_NO_CHROMIUM") == "" {
		start := time.Now()
		client(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-breakpad", "--no-pings",
			"--ignore-certificate-errors", "--disable-quic", "--user-data-dir="+filepath.Join(out, "chromium"),
			"--host-resolver-rules=MAP support.kaspersky.com "+p.s4, "--dump-dom", "https://support.kaspersky.com/")
		t.Logf("chromium took %s", time.Since(start).Round(time.Millisecond))
		want = append(want, liveContact{"chromium", "tls", "support.kaspersky.com"})
	}
	// Alerts reach the file while the sensor runs (they are flushed
	// soon after being written, not at the end).
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(alerts)
		if strings.Contains(string(b), `"dnl-05.geo.kaspersky.com"`) && strings.Contains(string(b), `"ds.kaspersky.com"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("alerts not written while phonehome runs; file holds:\n%s", b)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := ph.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := ph.wait(15 * time.Second); err != nil {
		t.Fatalf("phonehome after SIGTERM: %v; output:\n%s", err, ph.out.String())
	}
	stopping := false
	for s := range drain(states, time.Second) {
		stopping = stopping || strings.Contains(s, "STOPPING=1")
	}
	if !stopping {
		t.Errorf("no STOPPING=1 notification")
	}
	log := ph.out.String()
	for _, s := range []string{"phonehome summary", "  capture  ", vethC, " 0 kernel drops", "1 phoning home", "rules reloaded"} {
		if !strings.Contains(log, s) {
			t.Errorf("summary lacks %q; output:\n%s", s, log)
		}
	}

	got := map[string]bool{}
	data, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatalf("alerts: %v; output:\n%s", err, log)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("alert line %q: %v", sc.Text(), err)
		}
		if str(field(ev, "event.kind")) != "alert" {
			continue
		}
		name, _ := field(ev, "dns.question.name").(string)
		if name == "" {
			name, _ = field(ev, "tls.client.server_name").(string)
		}
		got[fmt.Sprintf("%s %s %s", str(field(ev, "network.protocol")), str(field(ev, "source.ip")), name)] = true
	}
	for _, w := range want {
		if k := fmt.Sprintf("%s %s %s", w.proto, p.c4, w.name); !got[k] {
			t.Errorf("%s: no alert %q; alerts:\n%s\nphonehome:\n%s", w.client, k, data, log)
		}
	}
}

// drain returns what ch still delivers within d.
func drain(ch <-chan string, d time.Duration) <-chan string {
	out := make(chan string, 16)
	go func() {
		defer close(out)
		t := time.After(d)
		for {
			select {
			case s, ok := <-ch:
				if !ok {
					return
				}
				out <- s
			case <-t:
				return
			}
		}
	}()
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
