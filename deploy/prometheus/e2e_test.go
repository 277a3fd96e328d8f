package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEndToEnd runs the real thing on loopback: the phonehome sensor
// replaying a capture with Kaspersky traffic (and serving on after it,
// --web.hold), Debian's Prometheus scraping it every second with the
// rules of this directory (their for: durations cut to 1 s), and Debian's
// Alertmanager receiving the alerts. It checks that every query of the
// Grafana dashboard returns data, that the exposition passes promtool
// check metrics, and that PhonehomeHostStillPhoningHome fires in
// Prometheus and reaches Alertmanager.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with Prometheus and Alertmanager skipped in -short mode")
	}
	promBin := tool(t, "prometheus")
	amBin := tool(t, "prometheus-alertmanager", "alertmanager")
	promtool := tool(t, "promtool")
	start := time.Now()
	dir := t.TempDir()

	// Build the sensor.
	sensor := filepath.Join(dir, "phonehome")
	build := exec.Command("go", "build", "-o", sensor, "../../sensor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built phonehome in %s", time.Since(start).Round(time.Millisecond))
	capture, err := filepath.Abs("../../sensor/testdata/demo.pcap")
	if err != nil {
		t.Fatal(err)
	}
	phPort, promPort, amPort := freePort(t), freePort(t), freePort(t)
	phAddr := "127.0.0.1:" + phPort
	promURL := "http://127.0.0.1:" + promPort
	amURL := "http://127.0.0.1:" + amPort

	// The sensor first, so that Prometheus never sees it down.
	runDir := filepath.Join(dir, "run")
	os.Mkdir(runDir, 0o755)
	ph := start1(t, runDir, "phonehome", sensor, "run", "-r", capture,
		"--web.listen-address", phAddr, "--web.hold", "60s",
		"--removal.deadline", "2018-10-01", "--storage.path", "")
	waitHTTP(t, "http://"+phAddr+"/-/ready", 20*time.Second)

	// Alertmanager: one receiver that goes nowhere; alerts are read back
	// from its API.
	amDir := filepath.Join(dir, "alertmanager")
	os.Mkdir(amDir, 0o755)
	amConfig := filepath.Join(amDir, "alertmanager.yml")
	writeFile(t, amConfig, "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n")
	start1(t, amDir, "alertmanager", amBin, "--config.file="+amConfig, "--storage.path="+filepath.Join(amDir, "data"),
		"--web.listen-address=127.0.0.1:"+amPort, "--cluster.listen-address=")

	// Prometheus with a copy of the rules whose for: durations are 1 s.
	promDir := filepath.Join(dir, "prometheus")
	os.Mkdir(promDir, 0o755)
	rules, err := os.ReadFile("phonehome.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules = regexp.MustCompile(`(?m)^(\s+for:) \S+$`).ReplaceAll(rules, []byte("$1 1s"))
	writeFile(t, filepath.Join(promDir, "phonehome.rules.yml"), string(rules))
	promConfig := filepath.Join(promDir, "prometheus.yml")
	writeFile(t, promConfig, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [phonehome.rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:%s']
scrape_configs:
  - job_name: phonehome
    static_configs:
      - targets: ['%s']
`, amPort, phAddr))
	start1(t, promDir, "prometheus", promBin, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address=127.0.0.1:"+promPort)
	waitHTTP(t, amURL+"/-/ready", 20*time.Second)
	waitHTTP(t, promURL+"/-/ready", 20*time.Second)
	t.Logf("sensor, Alertmanager and Prometheus up after %s", time.Since(start).Round(time.Millisecond))

	// The exposition passes promtool check metrics.
	exposition := get(t, "http://"+phAddr+"/metrics")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Every query of the dashboard returns data, once Prometheus has a
	// few scrapes: the variables as Grafana would fill them.
	exprs, vars := dashboardQueries(t, "../grafana/phonehome.json")
	subst := strings.NewReplacer("$job", "phonehome", "$instance", strings.ReplaceAll(regexp.QuoteMeta(phAddr), `\`, `\\`), "$__rate_interval", "5s")
	deadline := time.Now().Add(30 * time.Second)
	for _, e := range exprs {
		q := subst.Replace(e)
		for {
			n, err := query(promURL, q)
			if err != nil {
				t.Errorf("dashboard query %s: %v", q, err)
				break
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("dashboard query returned no data: %s", q)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The variables: label_values(SELECTOR, LABEL) through the labels API.
	for _, v := range vars {
		m := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`).FindStringSubmatch(subst.Replace(v))
		if m == nil {
			t.Errorf("variable query %q: not label_values(SELECTOR, LABEL)", v)
			continue
		}
		var r struct{ Data []string }
		getJSON(t, promURL+"/api/v1/label/"+m[2]+"/values?match[]="+url.QueryEscape(m[1]), &r)
		want := map[string]string{"job": "phonehome", "instance": phAddr}[m[2]]
		if !slices.Contains(r.Data, want) {
			t.Errorf("variable query %s: values %v, want %s among them", v, r.Data, want)
		}
	}
	t.Logf("%d dashboard queries and %d variables answered after %s", len(exprs), len(vars), time.Since(start).Round(time.Millisecond))

	// The alert fires in Prometheus…
	const alertname = "PhonehomeHostStillPhoningHome"
	waitFor(t, 30*time.Second, "Prometheus firing "+alertname, func() bool {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string
					State  string
					Value  string
				}
			}
		}
		getJSON(t, promURL+"/api/v1/alerts", &r)
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == alertname && a.State == "firing" {
				if a.Value != "3e+00" && a.Value != "3" {
					t.Errorf("%s value %s, want 3 hosts", alertname, a.Value)
				}
				return true
			}
		}
		return false
	})
	// … and reaches Alertmanager.
	waitFor(t, 30*time.Second, "Alertmanager receiving "+alertname, func() bool {
		var alerts []struct {
			Labels      map[string]string
			Annotations map[string]string
			Status      struct{ State string }
		}
		getJSON(t, amURL+"/api/v2/alerts", &alerts)
		for _, a := range alerts {
			if a.Labels["alertname"] == alertname {
				if a.Labels["instance"] != phAddr || a.Labels["severity"] != "critical" || !strings.Contains(a.Annotations["description"], "3 host(s)") {
					t.Errorf("Alertmanager has %v %v", a.Labels, a.Annotations)
				}
				return true
			}
		}
		return false
	})
	t.Logf("alert in Alertmanager after %s", time.Since(start).Round(time.Millisecond))

	// SIGTERM cuts the hold short; the run ends well.
	ph.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- ph.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("phonehome after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("phonehome did not stop within 10 s of SIGTERM during --web.hold")
	}
	t.Logf("end-to-end test took %s", time.Since(start).Round(time.Millisecond))
}

// dashboardQueries returns every target expression of the dashboard's
// panels and every query of its variables.
func dashboardQueries(t *testing.T, path string) (exprs, vars []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok && v.Type == "query" {
			vars = append(vars, s)
		}
	}
	if len(exprs) < 10 || len(vars) != 2 {
		t.Fatalf("%s: %d queries and %d query variables: not the dashboard expected", path, len(exprs), len(vars))
	}
	return exprs, vars
}

// query runs an instant query and returns the number of series it gave.
func query(promURL, q string) (int, error) {
	resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     json.RawMessage
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	if r.Data.ResultType != "vector" {
		return 0, fmt.Errorf("result type %s, want vector", r.Data.ResultType)
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// start1 starts a process in dir, logging to dir/NAME.log; it is killed
// when the test ends, and its log shown if the test failed.
func start1(t *testing.T, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log (end):\n%s", name, b)
		}
	})
	return cmd
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitHTTP(t *testing.T, u string, within time.Duration) {
	t.Helper()
	waitFor(t, within, u, func() bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func get(t *testing.T, u string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := json.Unmarshal(get(t, u), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
