package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// The hostile strings of TestHostileEverywhere: terminal escapes (clear
// screen, colours, OSC 8 hyperlink), newlines that would forge a log or
// JSON line, markup, quotes, invalid UTF-8, a NUL, a bidi override.
const (
	ansi    = "\x1b[2J\x1b[31mPWNED\x1b]8;;http://evil/\x07"
	forged  = "\r\n{\"event\":{\"kind\":\"alert\"}}\n"
	markup  = "<script>alert(1)</script><img src=x onerror=alert(2)>"
	quotes  = `'"` + "`"
	badUTF8 = "\xff\xfe\xc0\x80"
	bidi    = "\u202egnp.exe"
)

var hostile = ansi + forged + markup + quotes + badUTF8 + "\x00" + bidi

// hostileCapture: one internal host names itself hostilely in DHCP, looks
// up a clean Kaspersky name (so that it is inventoried and alerted) and
// hostile ones, sends a ClientHello with a hostile server name and HTTP
// requests with a hostile Host and a 64 KiB hostile User-Agent.
func hostileCapture(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	h := testcap.NewHost("10.60.0.10", 0)
	mac, _ := net.ParseMAC("02:00:0a:3c:00:0a")
	h.MAC = mac
	dhcpd := testcap.NewHost("10.60.0.1", 0)
	resolver := testcap.NewHost("10.60.0.53", 0)
	server := testcap.NewHost("203.0.113.80", 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.UDP(h, dhcpd, 68, 67, dhcpRequest(t, mac, "10.60.0.10", hostile[:min(len(hostile), 200)])))
	must(w.DNS(h, resolver, testcap.Query("dnl-01.geo.kaspersky.com", dns.TypeA, 1), nil))
	// Names with hostile bytes in their labels, escaped as in a master
	// file (\DDD): miekg/dns packs them raw.
	var labels []string
	raw := []byte(ansi + markup + badUTF8 + "\x00\n")
	for len(raw) > 0 {
		n := min(len(raw), 50)
		var label strings.Builder
		for _, b := range raw[:n] {
			if b < 0x21 || b > 0x7e || strings.IndexByte(`.\"()[];@$`, b) >= 0 {
				fmt.Fprintf(&label, "\\%03d", b)
			} else {
				label.WriteByte(b)
			}
		}
		labels = append(labels, label.String())
		raw = raw[n:]
	}
	lbl := strings.Join(labels, ".")
	for i, name := range []string{lbl + ".geo.kaspersky.com", "x." + lbl} {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeA)
		q.Id = uint16(10 + i)
		must(w.DNS(h, resolver, q, nil))
	}
	sni := strings.Repeat("a", 8000) + hostile + ".ksn.kaspersky-labs.com"
	hello, err := testcap.ClientHello(sni)
	must(err)
	must(w.TCPSession(h, server, w.EphemeralPort(), 443, [][]byte{hello}, nil))
	// A header value cannot hold CR or LF on the wire (they end it), nor
	// a request target a space: everything else goes in.
	inHeader := strings.NewReplacer("\r", "", "\n", "").Replace(hostile)
	long := strings.Repeat(inHeader, 64<<10/len(inHeader)+1) // past the 8 KiB head cap
	for _, host := range []string{"dnl-01.upd.kaspersky.com", inHeader + ".upd.kaspersky.com"} {
		for _, ua := range []string{inHeader, long} {
			req := []byte("GET /<script>alert(3)</script> HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + ua + "\r\n\r\n")
			must(w.TCPSession(h, server, w.EphemeralPort(), 80, testcap.Segments(req, 1460), nil))
		}
	}
	path := filepath.Join(dir, "hostile.pcap")
	must(os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

// checkText fails when out holds anything a terminal, a log reader or a
// browser would act on: control bytes other than newline and tab
// (escape, CR, NUL, BEL), invalid UTF-8, a Unicode bidi override, or a
// line over maxLine bytes; markup only where it matters (html, json).
func checkText(t *testing.T, what string, out []byte, maxLine int, noMarkup bool) {
	t.Helper()
	if !utf8.Valid(out) {
		i := 0
		for i < len(out) {
			r, n := utf8.DecodeRune(out[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		t.Errorf("%s: invalid UTF-8 at byte %d: %q", what, i, out[max(0, i-40):min(len(out), i+40)])
	}
	for i, b := range out {
		if (b < 0x20 && b != '\n' && b != '\t') || b == 0x7f {
			t.Errorf("%s: raw control byte %#x at %d: %q", what, b, i, out[max(0, i-40):min(len(out), i+40)])
			break
		}
	}
	if bytes.Contains(out, []byte("\u202e")) {
		t.Errorf("%s: raw bidi override", what)
	}
	for n, line := range bytes.Split(out, []byte("\n")) {
		if len(line) > maxLine {
			t.Errorf("%s: line %d is %d bytes, over %d", what, n+1, len(line), maxLine)
		}
	}
	if noMarkup && (bytes.Contains(out, []byte("<script>alert")) || bytes.Contains(out, []byte("<img src=x"))) {
		t.Errorf("%s: raw markup", what)
	}
}

// checkJSONLines: every line is one JSON object (no line was forged by a
// newline from the wire).
func checkJSONLines(t *testing.T, what string, out []byte) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Errorf("%s: line %d is not a JSON object: %v: %.200q", what, n+1, err, sc.Bytes())
		}
		if k, _ := v["event"].(map[string]any); k != nil && len(v) == 1 {
			t.Errorf("%s: line %d is the forged event", what, n+1)
		}
		n++
	}
	return n
}

// TestHostileEverywhere sends hostile names, server names, Host and
// User-Agent headers and a DHCP host name through inspect, the ECS and
// EVE outputs, the logs and terminal summary, every report format and
// the metrics: they come out escaped and bounded everywhere, and never
// as a metric label. (The syslog, Kafka, Alertmanager and webhook
// outputs carry the same ECS line or escaped text; each sink's own test
// sends hostile strings to its real receiver.)
func TestHostileEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	capture := hostileCapture(t, dir)
	if d := os.Getenv("PHONEHOME_KEEP"); d != "" { // keep the capture for a look with tcpdump
		b, _ := os.ReadFile(capture)
		os.WriteFile(d, b, 0o644)
	}
	bin := buildPhonehome(t, dir, "")
	const maxLine = 48 << 10 // a 64 KiB User-Agent must come out cut

	// inspect: every observation.
	out, err := exec.Command(bin, "inspect", "-r", capture).Output()
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	checkText(t, "inspect", out, maxLine, true)
	if n := checkJSONLines(t, "inspect", out); n < 8 {
		t.Errorf("inspect: %d events, want the DNS, TLS and HTTP observations", n)
	}
	if !bytes.Contains(out, []byte(`\\027[2j`)) || !bytes.Contains(out, []byte(`\\x1b[2J`)) {
		t.Errorf("inspect: the escape sequence is not shown escaped:\n%.3000s", out)
	}

	// run: outputs, logs (debug level), summary, inventory, metrics.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ecsOut, eveOut, db := filepath.Join(dir, "ecs.json"), filepath.Join(dir, "eve.json"), filepath.Join(dir, "inv.db")
	cmd := exec.Command(bin, "run", "-r", capture, "--storage.path", db, "--log.level", "debug",
		"--output", "ecs:"+ecsOut+"?observations=1", "--output", "eve:"+eveOut+"?observations=1",
		"--web.listen-address", addr, "--web.hold", "60s", "--removal.deadline", "2018-01-01")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	var metrics []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err == nil {
			metrics, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(metrics, []byte("phonehome_capture_running 0")) && bytes.Contains(metrics, []byte(`result="sent"`)) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not finish: %v\n%s", err, stderr.String())
		}
	}
	for _, bad := range []string{"PWNED", "pwned", "<script", "alert(1)", "geo.kaspersky.com", "kaspersky-labs.com", "\x1b", "gnp.exe", "aaaaaaaa", "10.60.0.10"} {
		if bytes.Contains(metrics, []byte(bad)) {
			t.Errorf("/metrics carries %q from the wire", bad)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	checkText(t, "run stderr (logs and summary)", stderr.Bytes(), 4096, false)
	if !strings.Contains(stderr.String(), "10.60.0.10") {
		t.Errorf("summary lacks the host:\n%s", stderr.String())
	}
	for _, f := range []string{ecsOut, eveOut} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkText(t, filepath.Base(f), b, maxLine, true)
		if n := checkJSONLines(t, filepath.Base(f), b); n < 10 {
			t.Errorf("%s: %d events, want the observations and alerts", f, n)
		}
		if !bytes.Contains(b, []byte(`"alert"`)) {
			t.Errorf("%s: no alert", f)
		}
	}

	// The report, in every format, as an auditor gets it.
	for _, format := range []string{"table", "csv", "json", "html"} {
		out, err := exec.Command(bin, "report", "--storage.path", db, "--format", format).Output()
		if err != nil {
			t.Fatalf("report %s: %v", format, err)
		}
		checkText(t, "report "+format, out, 1<<20, format == "html" || format == "json")
		if !bytes.Contains(out, []byte("10.60.0.10")) {
			t.Errorf("report %s lacks the host", format)
		}
		if format == "html" && !bytes.Contains(out, []byte("&lt;script&gt;")) {
			t.Errorf("report html: the DHCP host name is not shown escaped")
		}
	}
}
