package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	toolkit "github.com/prometheus/exporter-toolkit/web"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

var day = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// testHosts: one host past its deadline and still seen, one that never
// had a deadline, one silent for a month.
func testHosts() []inventory.Host {
	deadline := time.Date(2018, 10, 1, 0, 0, 0, 0, time.UTC)
	mk := func(ip string, first, last time.Time, d time.Time, cat rules.Category, site string) inventory.Host {
		return inventory.Host{IP: netip.MustParseAddr(ip), FirstSeen: first, LastSeen: last, Deadline: d, Contacts: 3, Site: site,
			Categories: map[rules.Category]*inventory.Category{cat: {First: first, Last: last, Count: 3}}}
	}
	return []inventory.Host{
		mk("10.0.0.1", deadline.AddDate(-1, 0, 0), day, deadline, rules.CategoryUpdate, "hq"),
		mk("10.0.0.2", day, day, time.Time{}, rules.CategoryKSNTelemetry, "hq"),
		mk("10.0.0.3", day.AddDate(0, -2, 0), day.AddDate(0, -1, 0), deadline, rules.CategoryUpdate, "branch"),
	}
}

type fixture struct {
	srv      *Server
	reloads  int
	reloadOK bool
	ready    bool
	filters  []inventory.Filter
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{reloadOK: true, ready: true}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "phonehome_test", Help: "A test gauge."}, func() float64 { return 1 }))
	cfg := Config{
		Gatherer: reg, Registerer: reg,
		Name: "phonehome", Description: "test sensor", Version: "v0.0.0-test",
		Reload: func() error {
			f.reloads++
			if !f.reloadOK {
				return errors.New("rules: bad.yaml:3: unknown key")
			}
			return nil
		},
		Ready: func() bool { return f.ready },
		Hosts: func(ctx context.Context, flt inventory.Filter) ([]inventory.Host, []inventory.DayCount, error) {
			f.filters = append(f.filters, flt)
			return testHosts(), nil, nil
		},
		Now: func() time.Time { return day.Add(time.Hour) },
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

func (f *fixture) do(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestLandingPage(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do(t, "GET", "/")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<h1>phonehome</h1>", "v0.0.0-test", `href="/metrics"`, `href="/report"`, `href="/api/v1/hosts"`, `href="/-/ready"`} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if strings.Contains(body, "debug/pprof") {
		t.Error("landing page links profiles without --debug.pprof")
	}
	if rec := f.do(t, "GET", "/nothing-here"); rec.Code != 404 {
		t.Errorf("GET /nothing-here: %d, want 404", rec.Code)
	}
	if rec := f.do(t, "GET", "/debug/pprof/"); rec.Code != 404 {
		t.Errorf("GET /debug/pprof/ without Pprof: %d, want 404", rec.Code)
	}
	if rec := f.do(t, "GET", "/favicon.ico"); rec.Code != 204 {
		t.Errorf("GET /favicon.ico: %d, want 204", rec.Code)
	}
}

func TestPprof(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Pprof = true })
	if rec := f.do(t, "GET", "/debug/pprof/"); rec.Code != 200 {
		t.Errorf("GET /debug/pprof/: %d", rec.Code)
	}
	if !strings.Contains(f.do(t, "GET", "/").Body.String(), "debug/pprof/heap") {
		t.Error("landing page does not link the profiles")
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do(t, "GET", "/metrics")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "phonehome_test 1") {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	// The handler counts itself.
	if !strings.Contains(f.do(t, "GET", "/metrics").Body.String(), `promhttp_metric_handler_requests_total{code="200"} 1`) {
		t.Error("no promhttp_metric_handler_requests_total")
	}
}

func TestHealthReady(t *testing.T) {
	f := newFixture(t, nil)
	f.ready = false
	if rec := f.do(t, "GET", "/-/healthy"); rec.Code != 200 || rec.Body.String() != "phonehome is Healthy.\n" {
		t.Errorf("/-/healthy: %d %q", rec.Code, rec.Body)
	}
	if rec := f.do(t, "GET", "/-/ready"); rec.Code != 503 {
		t.Errorf("/-/ready before the capture: %d, want 503", rec.Code)
	}
	f.ready = true
	if rec := f.do(t, "HEAD", "/-/ready"); rec.Code != 200 {
		t.Errorf("HEAD /-/ready: %d, want 200", rec.Code)
	}
	if rec := f.do(t, "POST", "/-/healthy"); rec.Code != 405 {
		t.Errorf("POST /-/healthy: %d, want 405", rec.Code)
	}
}

func TestReload(t *testing.T) {
	f := newFixture(t, nil)
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		rec := f.do(t, m, "/-/reload")
		if rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s /-/reload: %d Allow %q, want 405 Allow POST", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if f.reloads != 0 {
		t.Fatalf("%d reloads by other methods than POST", f.reloads)
	}
	if rec := f.do(t, "POST", "/-/reload"); rec.Code != 200 || f.reloads != 1 {
		t.Errorf("POST /-/reload: %d, %d reloads", rec.Code, f.reloads)
	}
	f.reloadOK = false
	rec := f.do(t, "POST", "/-/reload")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "bad.yaml:3") {
		t.Errorf("failing POST /-/reload: %d %q, want 500 naming the file", rec.Code, rec.Body)
	}
}

// TestReadOnly: no endpoint but POST /-/reload takes a method that could
// change anything.
func TestReadOnly(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Pprof = true })
	for _, path := range []string{"/", "/metrics", "/-/healthy", "/-/ready", "/api/v1/hosts", "/report", "/favicon.ico", "/debug/pprof/", "/debug/pprof/profile", "/nosuch"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			if rec := f.do(t, m, path); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q, want 405", m, path, rec.Code, rec.Header().Get("Allow"))
			}
		}
		if path == "/debug/pprof/profile" {
			continue // a HEAD would profile for 30 s
		}
		if rec := f.do(t, "HEAD", path); rec.Code == 405 {
			t.Errorf("HEAD %s: 405", path)
		}
	}
	if f.reloads != 0 {
		t.Errorf("%d reloads", f.reloads)
	}
	if rec := f.do(t, "POST", "/debug/pprof/symbol"); rec.Code != 200 {
		t.Errorf("POST /debug/pprof/symbol (go tool pprof): %d", rec.Code)
	}
}

type jsonHost struct {
	IP       string `json:"ip"`
	Status   string `json:"status"`
	LastSeen string `json:"last_seen"`
}

func hostsOf(t *testing.T, rec *httptest.ResponseRecorder) []jsonHost {
	t.Helper()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var hs []jsonHost
	if err := json.Unmarshal(rec.Body.Bytes(), &hs); err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestHostsAPI(t *testing.T) {
	f := newFixture(t, nil)
	all := hostsOf(t, f.do(t, "GET", "/api/v1/hosts"))
	if len(all) != 3 {
		t.Fatalf("%d hosts, want 3", len(all))
	}
	// As of the fixture's clock (an hour after the last contact).
	want := map[string]string{"10.0.0.1": "never-removed", "10.0.0.2": "no-deadline", "10.0.0.3": "removed"}
	for _, h := range all {
		if want[h.IP] != h.Status {
			t.Errorf("%s: status %s, want %s", h.IP, h.Status, want[h.IP])
		}
	}
	for _, tc := range []struct {
		query string
		ips   []string
	}{
		{"status=never-removed", []string{"10.0.0.1"}},
		{"status=never-removed,removed", []string{"10.0.0.1", "10.0.0.3"}},
		{"status=never-removed&status=no-deadline", []string{"10.0.0.1", "10.0.0.2"}},
		{"category=ksn-telemetry", []string{"10.0.0.2"}},
		{"site=branch", []string{"10.0.0.3"}},
		{"since=2026-11-01", []string{"10.0.0.1", "10.0.0.2"}},
		// A month later, everyone is silent.
		{"now=2026-12-15&status=removed", []string{"10.0.0.1", "10.0.0.3"}},
		{"quiet=1h&now=2026-11-02T12:00:00Z&status=removed", []string{"10.0.0.1", "10.0.0.3"}},
	} {
		hs := hostsOf(t, f.do(t, "GET", "/api/v1/hosts?"+tc.query))
		var got []string
		for _, h := range hs {
			got = append(got, h.IP)
		}
		if strings.Join(got, " ") != strings.Join(tc.ips, " ") {
			t.Errorf("?%s: %v, want %v", tc.query, got, tc.ips)
		}
	}
	// The filters reach the store, which filters what it can.
	if got := f.filters[6]; got.Since != time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) || f.filters[4].Category != rules.CategoryKSNTelemetry || f.filters[5].Site != "branch" {
		t.Errorf("filters passed to the store: %+v", f.filters)
	}
	for _, bad := range []string{"category=nope", "status=gone", "since=yesterday", "quiet=-1h", "quiet=soon", "now=later", "sort=ip"} {
		rec := f.do(t, "GET", "/api/v1/hosts?"+bad)
		var e struct{ Error string }
		if rec.Code != 400 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("?%s: %d %s, want 400 with a JSON error", bad, rec.Code, rec.Body)
		}
	}
	if rec := f.do(t, "POST", "/api/v1/hosts"); rec.Code != 405 {
		t.Errorf("POST /api/v1/hosts: %d, want 405", rec.Code)
	}
}

func TestHostsError(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Hosts = func(context.Context, inventory.Filter) ([]inventory.Host, []inventory.DayCount, error) {
			return nil, nil, errors.New("database is locked")
		}
	})
	if rec := f.do(t, "GET", "/api/v1/hosts"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "database is locked") {
		t.Errorf("GET /api/v1/hosts with a failing store: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(t, "GET", "/report"); rec.Code != 500 {
		t.Errorf("GET /report with a failing store: %d", rec.Code)
	}
}

func TestReport(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do(t, "GET", "/report?status=never-removed")
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /report: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !strings.Contains(body, "Content-Security-Policy") || !strings.Contains(body, "10.0.0.1") || strings.Contains(body, "10.0.0.3") {
		t.Error("/report?status=never-removed: not the filtered report")
	}
	if rec := f.do(t, "GET", "/report?category=nope"); rec.Code != 400 {
		t.Errorf("GET /report?category=nope: %d, want 400", rec.Code)
	}
}

func TestNoHosts(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Hosts, c.Reload = nil, nil })
	for _, p := range []string{"/api/v1/hosts", "/report"} {
		if rec := f.do(t, "GET", p); rec.Code != 404 {
			t.Errorf("GET %s without Hosts: %d, want 404", p, rec.Code)
		}
	}
	if rec := f.do(t, "POST", "/-/reload"); rec.Code != 404 {
		t.Errorf("POST /-/reload without Reload: %d, want 404", rec.Code)
	}
}

func TestStartShutdown(t *testing.T) {
	addrs := []string{"127.0.0.1:0"}
	f := newFixture(t, func(c *Config) { c.Flags = toolkit.FlagConfig{WebListenAddresses: &addrs} })
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := f.srv.Addrs()[0].String()
	resp, err := http.Get("http://" + addr + "/-/healthy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "phonehome is Healthy.\n" {
		t.Errorf("GET /-/healthy: %d %q", resp.StatusCode, b)
	}

	// The address is taken now: a second server refuses to start.
	taken := []string{addr}
	g := newFixture(t, func(c *Config) { c.Flags = toolkit.FlagConfig{WebListenAddresses: &taken} })
	if err := g.srv.Start(); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("second server on %s: %v, want an error naming the address", addr, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if f.srv.Err() != nil {
		t.Errorf("Err after Shutdown: %v", f.srv.Err())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after Shutdown")
	}
}

func TestBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown-key.yml": "tls_server_config:\n  cert_fil: x.pem\n",
		"no-key.yml":      "tls_server_config:\n  cert_file: " + filepath.Join(dir, "missing.pem") + "\n",
		"bad-hash.yml":    "basic_auth_users:\n  prometheus: not-a-bcrypt-hash\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{Gatherer: prometheus.NewRegistry(), Flags: toolkit.FlagConfig{WebConfigFile: &path}})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	missing := filepath.Join(dir, "missing.yml")
	if _, err := New(Config{Gatherer: prometheus.NewRegistry(), Flags: toolkit.FlagConfig{WebConfigFile: &missing}}); err == nil {
		t.Error("missing web config file: no error")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no gatherer: no error")
	}
}
