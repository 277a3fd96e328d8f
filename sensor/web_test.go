package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"image/png"
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

	"golang.org/x/crypto/bcrypt"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// sensorProc is a phonehome binary running `run` in a process of its own,
// so that SIGTERM can end its --web.hold.
type sensorProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
}

// startSensor builds phonehome and runs it over the demo capture,
// serving on a free loopback port for up to a minute after the capture.
func startSensor(t *testing.T, args ...string) *sensorProc {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "phonehome")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testsvc.FreeAddr(t)
	capture, _ := filepath.Abs(demo)
	all := append([]string{"run", "-r", capture, "--web.listen-address", addr, "--web.hold", "60s",
		"--removal.deadline", "2018-10-01", "--observer.name", "sensor-test"}, args...)
	p := &sensorProc{cmd: exec.Command(bin, all...), addr: addr, stderr: &bytes.Buffer{}}
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("phonehome stderr:\n%s", p.stderr)
		}
	})
	return p
}

// stop sends SIGTERM, which ends the hold, and checks the exit status.
func (p *sensorProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("phonehome after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("phonehome did not stop within 10 s of SIGTERM")
	}
}

// wait polls until get succeeds with 200.
func waitOK(t *testing.T, c *http.Client, req func() *http.Request) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Do(req())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sensor not ready after 20 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWebTLSBasicAuth: with --web.config.file (a self-signed certificate
// and a bcrypt basic-auth user), /metrics is served over TLS only, and
// only with the right credentials.
func TestWebTLSBasicAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	certs := testsvc.Certs(t, dir)
	certFile, keyFile := certs.Cert, certs.Key
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret phrase"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeTestFile(t, webConfig, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n",
		certFile, keyFile, hash)))

	p := startSensor(t, "--web.config.file", webConfig, "--storage.path", "")
	pool := certs.Pool(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req := func(path, user, pass string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://"+p.addr+path, nil)
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		return r
	}
	waitOK(t, client, func() *http.Request { return req("/-/ready", "prometheus", "s3cret phrase") })

	for _, tc := range []struct{ user, pass string }{{"", ""}, {"prometheus", "wrong"}, {"someone", "s3cret phrase"}} {
		resp, err := client.Do(req("/metrics", tc.user, tc.pass))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("/metrics as %q/%q: %d (WWW-Authenticate %q), want 401", tc.user, tc.pass, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, err := client.Do(req("/metrics", "prometheus", "s3cret phrase"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || !bytes.Contains(body, []byte("phonehome_hosts_phoning_home_after_deadline 3")) {
		t.Errorf("/metrics with credentials over TLS: %d (TLS %v)\n%.2000s", resp.StatusCode, resp.TLS != nil, body)
	}
	// The hosts API is behind the same door.
	resp, err = client.Do(req("/api/v1/hosts", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/v1/hosts without credentials: %d, want 401", resp.StatusCode)
	}
	// Plain HTTP gets nothing.
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.addr + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK || bytes.Contains(b, []byte("phonehome_")) {
			t.Errorf("plain HTTP: %d, served metrics", plain.StatusCode)
		}
	}
	p.stop(t)
}

// TestWebPagesInChromium loads the landing page and /report of a running
// sensor (with an inventory store) in headless Chromium: no console
// message, a screenshot that shows something. With PHONEHOME_ARTIFACTS
// set, the screenshots are copied there. The hosts API and the reload
// endpoint are checked on the way.
func TestWebPagesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and a browser")
	}
	chromium := testsvc.Program(t, "chromium", "chromium not found: install Debian's chromium (make deps) to run the browser test")
	dir := t.TempDir()
	p := startSensor(t, "--storage.path", filepath.Join(dir, "inventory.db"))
	base := "http://" + p.addr
	client := &http.Client{Timeout: 10 * time.Second}
	waitOK(t, client, func() *http.Request { r, _ := http.NewRequest(http.MethodGet, base+"/-/ready", nil); return r })

	// The hosts API reads the store: the three hosts of the demo,
	// judged as of the day after the capture.
	var hosts []struct {
		IP, Status string
		Observer   string
	}
	getJSONTest(t, client, base+"/api/v1/hosts?now=2026-11-03", &hosts)
	got := map[string]string{}
	for _, h := range hosts {
		got[h.IP] = h.Status
		if h.Observer != "sensor-test" {
			t.Errorf("%s: observer %q", h.IP, h.Observer)
		}
	}
	if len(got) != 3 || got["10.20.1.15"] != "still-phoning-home" || got["fd00:20::1a"] != "still-phoning-home" {
		t.Errorf("/api/v1/hosts: %v", hosts)
	}

	// Reload: POST only, and counted.
	resp, err := client.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /-/reload: %d", resp.StatusCode)
	}
	resp, err = client.Get(base + "/-/reload")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", resp.StatusCode)
	}
	metrics := getTest(t, client, base+"/metrics")
	for _, want := range []string{"phonehome_rules_reloads_total 1", "phonehome_geoip_reloads_total 1", "phonehome_rules_last_reload_successful 1",
		"phonehome_inventory_flushes_total", "phonehome_capture_running 0", `phonehome_output_queue_capacity{output="ecs:-"} 10000`,
		`phonehome_output_events_total{output="ecs:-",result="dropped"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	for _, page := range []struct{ name, path, want string }{
		{"landing", "/", "<h1>phonehome</h1>"},
		{"report", "/report", "10.20.7.42"},
	} {
		if body := getTest(t, client, base+page.path); !strings.Contains(body, page.want) {
			t.Errorf("%s: no %q in the page", page.path, page.want)
		}
		shot := filepath.Join(dir, "phonehome-"+page.name+".png")
		stderr, err := chromiumShot(chromium, filepath.Join(dir, "profile-"+page.name), shot, base+page.path)
		if err != nil {
			t.Fatalf("chromium %s: %v\n%s", page.path, err, stderr)
		}
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Refused") {
				t.Errorf("chromium %s: console message: %s", page.path, line)
			}
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("screenshot of %s: %v", page.path, err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("screenshot of %s: %v", page.path, err)
		}
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
			t.Errorf("screenshot of %s is %dx%d", page.path, b.Dx(), b.Dy())
		}
		if d := os.Getenv("PHONEHOME_ARTIFACTS"); d != "" {
			b, err := os.ReadFile(shot)
			if err == nil {
				err = os.WriteFile(filepath.Join(d, filepath.Base(shot)), b, 0o644)
			}
			if err != nil {
				t.Errorf("PHONEHOME_ARTIFACTS: %v", err)
			}
		}
	}
	p.stop(t)
}

// chromiumShot takes a screenshot of url with headless Chromium and its
// own profile, and returns Chromium's stderr.
func chromiumShot(bin, profile, shot, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+profile,
		"--enable-logging=stderr", "--v=0", "--window-size=1280,900", "--screenshot="+shot, url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return errb.String(), err
}

func getTest(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func getJSONTest(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getTest(t, c, u)), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWebFlagErrors: a bad web configuration is a usage error (exit 2)
// before anything is read; a listen address in use is a runtime failure.
func TestWebFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "web.yml")
	writeTestFile(t, bad, []byte("tls_server_config:\n  cert_fil: x.pem\n"))
	code, stdout, stderr := runCLI(t, "run", "-r", demo, "--web.listen-address", "127.0.0.1:0", "--web.config.file", bad)
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "web.yml") {
		t.Errorf("bad --web.config.file: exit %d, stdout %q, stderr %q; want 2 naming the file, no output", code, stdout, stderr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, stderr = runCLI(t, "run", "-r", demo, "--web.listen-address", l.Addr().String())
	if code != exitFailure || !strings.Contains(stderr, l.Addr().String()) {
		t.Errorf("listen address in use: exit %d, stderr %q; want 1 naming the address", code, stderr)
	}
}

// TestAlertLabels: the labels of phonehome_alerts_total come from fixed
// sets, whatever the event says.
func TestAlertLabels(t *testing.T) {
	ev := func(field string, sev int) *alert.Event {
		e := &alert.Event{Rule: &alert.Rule{Ruleset: "kaspersky", Category: "update"}}
		e.Event.Kind, e.Event.Severity = alert.KindAlert, sev
		e.Threat = &alert.Threat{Enrichments: []alert.Enrichment{{Matched: alert.Matched{Field: field, Atomic: "x.kaspersky.com"}}}}
		return e
	}
	for _, tc := range []struct {
		field    string
		sev      int
		kind     string
		severity string
	}{
		{"dns.question.name", 73, "name", "high"},
		{"tls.client.server_name", 99, "name", "critical"},
		{"destination.domain", 47, "learned-address", "medium"},
		{"destination.ip", 21, "address", "low"},
		{"destination.geo.country_iso_code", 1, "country", "info"},
		{"something.new", 50, "other", "unknown"},
	} {
		e := ev(tc.field, tc.sev)
		if k, s := alertKind(e), severityName(e.Event.Severity); k != tc.kind || s != tc.severity {
			t.Errorf("%s/%d: kind %s severity %s, want %s %s", tc.field, tc.sev, k, s, tc.kind, tc.severity)
		}
	}
	w := &webServer{alerts: map[alertKey]uint64{}}
	e := ev("url.domain", 73)
	e.Rule.Category = "<script>"
	w.countAlert(e)
	w.countAlert(&alert.Event{})
	if w.alerts[alertKey{"kaspersky", "unknown", "name", "high"}] != 1 || w.alerts[alertKey{"unknown", "unknown", "other", "unknown"}] != 1 {
		t.Errorf("alert counts %v", w.alerts)
	}
}
