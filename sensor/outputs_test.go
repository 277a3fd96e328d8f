package main

// End-to-end tests of the --output stage: one run of the demo capture
// feeding every kind of output at once, each to a real receiver
// (rsyslogd, Alertmanager, a kfake Kafka cluster, an HTTP receiver that
// checks signatures), with what each receiver got compared with a golden
// file; and a run in which one receiver stops reading while the others
// stay healthy.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/webhook"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// demoAlerts is the number of alerts the demo capture raises
// (testdata/demo.alerts.golden).
const demoAlerts = 11

// outCounters is one "output NAME  N sent, …" line of the summary.
type outCounters struct{ sent, retried, dropped, failed uint64 }

var outLineRE = regexp.MustCompile(`(?m)^  output (\S+) +(\d+) sent, (\d+) retried, (\d+) dropped \(queue full\), (\d+) failed`)

// outSummary reads the per-output lines of a run's summary, by name.
func outSummary(t *testing.T, stderr string) map[string]outCounters {
	t.Helper()
	m := map[string]outCounters{}
	for _, f := range outLineRE.FindAllStringSubmatch(stderr, -1) {
		n := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("summary line %q: %v", f[0], err)
			}
			return v
		}
		m[f[1]] = outCounters{sent: n(2), retried: n(3), dropped: n(4), failed: n(5)}
	}
	return m
}

// outVersion makes the version in events stable.
func outVersion(s string) string {
	v := buildVersion()
	s = strings.ReplaceAll(s, `"version":"`+v+`"`, `"version":"test"`)
	return strings.ReplaceAll(s, `"observer_version":"`+v+`"`, `"observer_version":"test"`)
}

// rsyslogLines returns the lines rsyslogd wrote to file once it holds n,
// having waited a little longer in case more than n arrive; any other
// count is an error.
func rsyslogLines(t *testing.T, r *testsvc.Rsyslog, file string, n int) []string {
	t.Helper()
	lines, b := r.Lines(t, file, n, 100*time.Millisecond)
	if len(lines) != n {
		t.Errorf("rsyslogd wrote %d lines to %s, want %d:\n%s\nrsyslogd: %s", len(lines), filepath.Base(file), n, b, r.Log())
	}
	return lines
}

// outWebhook is an HTTP receiver as a user would write one: it checks
// every request with webhook.Verify and keeps the events it accepted.
type outWebhook struct {
	secret []byte
	mu     sync.Mutex
	events []json.RawMessage
	heads  map[string]bool // normalised request heads
	errs   []string
}

func (rc *outWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail := func(code int, msg string) {
		rc.mu.Lock()
		rc.errs = append(rc.errs, msg)
		rc.mu.Unlock()
		http.Error(w, msg, code)
	}
	ts := r.Header.Get(webhook.HeaderTimestamp)
	if err := webhook.Verify(rc.secret, ts, r.Header.Get(webhook.HeaderSignature), body, time.Minute, time.Now()); err != nil {
		fail(http.StatusUnauthorized, err.Error())
		return
	}
	var msg struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		fail(http.StatusBadRequest, "body: "+err.Error())
		return
	}
	// The head without what varies: the timestamp, and so the signature
	// (checked above).
	head := fmt.Sprintf("%s %s Content-Type: %s User-Agent: %s X-Test: %s %s: UNIX-TIME %s: sha256=VERIFIED",
		r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), r.Header.Get("X-Test"),
		webhook.HeaderTimestamp, webhook.HeaderSignature)
	rc.mu.Lock()
	rc.events = append(rc.events, msg.Events...)
	if rc.heads == nil {
		rc.heads = map[string]bool{}
	}
	rc.heads[head] = true
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// startOutWebhook serves rc and writes its secret to a file; it returns
// the --output spec (without options other than the secret file).
func startOutWebhook(t *testing.T, rc *outWebhook) string {
	t.Helper()
	rc.secret = []byte("outputs-test-secret")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, append(rc.secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "http://", "webhook+http://", 1) + "/hook?secret-file=" + secretFile
}

// syslogProcID is the PROCID field of an RFC 5424 header: the sensor's pid.
var syslogProcID = regexp.MustCompile(`^(<\d+>1 \S+ \S+ \S+ )\d+ `)

// TestOutputsGolden: the demo capture, read once with every kind of
// output at the same time, each to a real receiver. What each receiver
// got, with what varies from run to run replaced, is compared with
// testdata/outputs/<sink>.golden (go test -update rewrites them); every
// receiver got the 11 alerts exactly once (and, where asked for, the
// observations), and the summary shows nothing dropped or failed.
func TestOutputsGolden(t *testing.T) {
	dir := t.TempDir()
	ecsFile := filepath.Join(dir, "alerts.json")
	eveFile := filepath.Join(dir, "eve.json")
	outputs := []string{"ecs:" + ecsFile, "eve:" + eveFile + "?observations=1"}
	want := map[string]uint64{"ecs:" + ecsFile: demoAlerts} // events sent, by output name; eve's is known after the run

	var syslogd *testsvc.Rsyslog
	if !testsvc.HaveRsyslog() {
		t.Log("rsyslogd not installed (Debian package rsyslog): syslog outputs not tested")
	} else {
		syslogd = testsvc.StartRsyslog(t, testsvc.RsyslogOptions{TCPPort: testsvc.FreePort(t, "tcp"), UDPPort: testsvc.FreePort(t, "udp")})
		for _, o := range []string{fmt.Sprintf("syslog+tcp://127.0.0.1:%d", syslogd.TCPPort), fmt.Sprintf("syslog+udp://127.0.0.1:%d", syslogd.UDPPort)} {
			outputs = append(outputs, o)
			want[o] = demoAlerts
		}
	}

	kc := testsvc.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "phonehome", "phonehome.observations"))
	brokers := kc.ListenAddrs()
	kafkaOut := "kafka://" + strings.Join(brokers, ",") + "/phonehome"
	outputs = append(outputs, kafkaOut+"?observations=1")

	var amBase string
	if _, err := os.Stat(testsvc.AlertmanagerBinary); err != nil {
		t.Log("Alertmanager not installed (Debian package prometheus-alertmanager): alertmanager output not tested")
	} else {
		amBase = testsvc.StartAlertmanager(t, testsvc.AlertmanagerOptions{}).URL
		o := strings.Replace(amBase, "http://", "alertmanager+http://", 1)
		outputs = append(outputs, o)
		want[o] = demoAlerts
	}

	hook := &outWebhook{}
	hookSpec := startOutWebhook(t, hook) + "&header=X-Test:golden"
	want[strings.SplitN(hookSpec, "?", 2)[0]] = demoAlerts

	args := []string{"run", "-r", demo, "--observer.name", "sensor-test", "--log.level", "warn"}
	for _, o := range outputs {
		args = append(args, "--output", o)
	}
	args = append(args, "--output", hookSpec)
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout not empty with outputs given: %q", stdout)
	}

	// ECS file: the same bytes as ECS on stdout (TestDemoRunGolden).
	b, err := os.ReadFile(ecsFile)
	if err != nil {
		t.Fatal(err)
	}
	ecs := outVersion(string(b))
	golden(t, "demo.alerts.golden", ecs)
	ecsLines := strings.Split(strings.TrimSuffix(ecs, "\n"), "\n")
	if len(ecsLines) != demoAlerts {
		t.Fatalf("ECS file: %d alerts, want %d", len(ecsLines), demoAlerts)
	}

	// EVE file, observations included.
	b, err = os.ReadFile(eveFile)
	if err != nil {
		t.Fatal(err)
	}
	eve := outVersion(string(b))
	golden(t, "outputs/eve.golden", eve)
	var eveAlerts, eveObs int
	for _, line := range strings.Split(strings.TrimSuffix(eve, "\n"), "\n") {
		var ev struct {
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("EVE line %q: %v", line, err)
		}
		if ev.EventType == "alert" {
			eveAlerts++
		} else {
			eveObs++
		}
	}
	if eveAlerts != demoAlerts || eveObs == 0 {
		t.Errorf("EVE file: %d alerts and %d observations, want %d and some", eveAlerts, eveObs, demoAlerts)
	}
	want["eve:"+eveFile] = uint64(eveAlerts + eveObs)
	want["kafka://"+strings.Join(brokers, ",")+"/phonehome"] = uint64(eveAlerts + eveObs)

	// Syslog: one RFC 5424 message per alert whose MSG is the ECS line,
	// the same over TCP and UDP.
	if syslogd != nil {
		for _, tr := range []struct{ name, file string }{{"tcp", syslogd.TCPFile}, {"udp", syslogd.UDPFile}} {
			lines := rsyslogLines(t, syslogd, tr.file, demoAlerts)
			for i := range lines {
				lines[i] = syslogProcID.ReplaceAllString(outVersion(lines[i]), "${1}PROCID ")
				if i < len(ecsLines) && !strings.HasSuffix(lines[i], " - "+ecsLines[i]) {
					t.Errorf("syslog+%s message %d is not the ECS line behind a header:\n%s\nwant …%s", tr.name, i, lines[i], ecsLines[i])
				}
			}
			golden(t, "outputs/syslog.golden", strings.Join(lines, "\n")+"\n")
		}
	}

	// Kafka: alerts on the topic, observations on topic.observations,
	// each record's value the ECS line.
	recs := testsvc.Consume(t, brokers, eveAlerts+eveObs, []string{"phonehome", "phonehome.observations"}, 10*time.Second, 300*time.Millisecond)
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Offset - b.Offset)
	})
	var kafka strings.Builder
	var kafkaAlerts []string
	kinds := map[string]int{}
	for _, r := range recs {
		var hdrs []string
		for _, h := range r.Headers {
			hdrs = append(hdrs, h.Key+"="+string(h.Value))
			if h.Key == "event.kind" {
				kinds[r.Topic+" "+string(h.Value)]++
			}
		}
		fmt.Fprintf(&kafka, "%s offset %d key %s headers %s\n%s\n", r.Topic, r.Offset, r.Key, strings.Join(hdrs, ","), outVersion(string(r.Value)))
		if r.Topic == "phonehome" {
			kafkaAlerts = append(kafkaAlerts, outVersion(string(r.Value)))
		}
	}
	golden(t, "outputs/kafka.golden", kafka.String())
	if len(recs) != eveAlerts+eveObs || kinds["phonehome alert"] != demoAlerts || kinds["phonehome.observations event"] != eveObs {
		t.Errorf("kafka: %d records, by topic and event.kind %v; want %d alerts on phonehome and %d events on phonehome.observations",
			len(recs), kinds, demoAlerts, eveObs)
	}
	if !slices.Equal(kafkaAlerts, ecsLines) {
		t.Errorf("kafka alert values differ from the ECS lines:\n%s", strings.Join(kafkaAlerts, "\n"))
	}

	// Alertmanager: one alert per internal host × rule (the 11 alerts
	// folded), read back from its API.
	if amBase != "" {
		resp, err := http.Get(amBase + "/api/v2/alerts")
		if err != nil {
			t.Fatal(err)
		}
		var got []outAMAlert
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var am strings.Builder
		keys := map[string]bool{}
		slices.SortFunc(got, func(a, b outAMAlert) int {
			ka, _ := json.Marshal(a.Labels)
			kb, _ := json.Marshal(b.Labels)
			return strings.Compare(string(ka), string(kb))
		})
		for _, a := range got {
			if a.StartsAt.IsZero() || !a.EndsAt.After(time.Now()) {
				t.Errorf("alertmanager alert %v: startsAt %s, endsAt %s: not active", a.Labels, a.StartsAt, a.EndsAt)
			}
			keys[a.Labels["host"]+" "+a.Labels["rule"]] = true
			// startsAt and endsAt are wall-clock times: left out.
			b, _ := json.MarshalIndent(map[string]any{"labels": a.Labels, "annotations": a.Annotations,
				"generatorURL": a.GeneratorURL, "state": a.Status.State}, "", "  ")
			am.Write(b)
			am.WriteByte('\n')
		}
		golden(t, "outputs/alertmanager.golden", am.String())
		// The same host × rule pairs as the ECS alerts.
		wantKeys := map[string]bool{}
		for _, line := range ecsLines {
			var ev struct {
				Source    struct{ IP string }   `json:"source"`
				Rule      struct{ ID string }   `json:"rule"`
				Phonehome struct{ Host string } `json:"phonehome"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			host := ev.Phonehome.Host
			if host == "" {
				host = ev.Source.IP
			}
			wantKeys[host+" "+ev.Rule.ID] = true
		}
		if len(got) != len(keys) || !maps.Equal(keys, wantKeys) {
			t.Errorf("alertmanager holds %d alerts for %v, want one for each of %v", len(got), keys, wantKeys)
		}
	}

	// Webhook: every request verified; the events are the ECS lines.
	hook.mu.Lock()
	var hookOut strings.Builder
	for _, h := range slices.Sorted(maps.Keys(hook.heads)) {
		hookOut.WriteString(h + "\n")
	}
	var hookEvents []string
	for _, e := range hook.events {
		hookEvents = append(hookEvents, outVersion(string(e)))
	}
	for _, e := range hookEvents {
		hookOut.WriteString(e + "\n")
	}
	errs := hook.errs
	hook.mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("webhook receiver refused requests: %q", errs)
	}
	golden(t, "outputs/webhook.golden", hookOut.String())
	if !slices.Equal(hookEvents, ecsLines) {
		t.Errorf("webhook got %d events, not the %d ECS lines:\n%s", len(hookEvents), len(ecsLines), strings.Join(hookEvents, "\n"))
	}

	// The summary: one line per output, everything sent.
	counters := outSummary(t, stderr)
	for name, n := range want {
		c, ok := counters[name]
		if !ok {
			t.Errorf("no summary line for output %s:\n%s", name, stderr)
			continue
		}
		if c.sent != n || c.dropped != 0 || c.failed != 0 {
			t.Errorf("output %s: %+v, want %d sent, 0 dropped, 0 failed", name, c, n)
		}
	}
	if len(counters) != len(want) {
		t.Errorf("%d output lines in the summary, want %d:\n%s", len(counters), len(want), stderr)
	}
}

// outAMAlert is the part of Alertmanager's gettableAlert the test reads.
type outAMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	GeneratorURL string            `json:"generatorURL"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// TestOutputBackPressure: one receiver accepts the connection and never
// reads. The capture is still read to the end, that output drops what
// its queue cannot hold and fails what it holds when the drain timeout
// ends (every event offered to it is counted once), the healthy outputs
// get every event, and the run exits 1 naming the output that failed.
func TestOutputBackPressure(t *testing.T) {
	// A capture of many observations: DNS queries from ten clients, and
	// a few that raise alerts.
	dir := t.TempDir()
	capFile := filepath.Join(dir, "many.pcap")
	f, err := os.Create(capFile)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w, err := testcap.NewWriter(bw, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	w.SetStep(time.Millisecond)
	resolver := testcap.NewHost("10.20.0.53", 0)
	// Long names make big events: the stalled socket (a few MB of
	// kernel buffers on loopback) fills soon.
	const queries, alerting = 100000, 5
	long := strings.Repeat("a123456789b123456789c123456789d123456789e123456789f123456789.", 3)
	for i := range queries {
		client := testcap.NewHost(fmt.Sprintf("10.20.3.%d", 10+i%10), 0)
		name := fmt.Sprintf("%shost%d.example.org", long, i)
		if i < alerting {
			client = testcap.NewHost(fmt.Sprintf("10.20.9.%d", 10+i), 0)
			name = "ds.kaspersky.com"
		}
		if err := w.DNS(client, resolver, testcap.Query(name, dns.TypeA, uint16(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The stalled receiver: accepts, never reads, with a small receive
	// buffer so that the sender's socket fills soon.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	stalled, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var connMu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := stalled.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			conns = append(conns, c)
			connMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stalled.Close()
		<-accepted
		connMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connMu.Unlock()
	})
	stalledName := "syslog+tcp://" + stalled.Addr().String()

	ecsFile := filepath.Join(dir, "events.json")
	hook := &outWebhook{}
	hookSpec := startOutWebhook(t, hook)
	hookName := strings.SplitN(hookSpec, "?", 2)[0]
	code, _, stderr := runCLI(t, "run", "-r", capFile, "--observer.name", "sensor-test", "--log.level", "error",
		"--output.drain-timeout", "1s",
		"--output", stalledName+"?queue=100&observations=1",
		// The healthy outputs get a queue that holds the whole run: the
		// point is that the stalled one does not hold them back. The
		// webhook takes one observation in ten, so that it is done well
		// within the drain timeout on a loaded machine too.
		"--output", "ecs:"+ecsFile+"?observations=1&queue=200000",
		"--output", hookSpec+"&observations=0.1&queue=200000")

	// The capture was read to the end.
	m := regexp.MustCompile(`(?m)^  packets +(\d+) `).FindStringSubmatch(stderr)
	if m == nil || m[1] != strconv.Itoa(w.Packets()) {
		t.Errorf("summary packets %v, want %d:\n%s", m, w.Packets(), stderr)
	}

	// The healthy outputs got every event, once.
	b, err := os.ReadFile(ecsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every query is an observation, and the five alerting ones raise
	// an alert besides.
	offered := uint64(strings.Count(string(b), "\n"))
	alerts := uint64(strings.Count(string(b), `"kind":"alert"`))
	if alerts != alerting || offered-alerts != queries {
		t.Errorf("ECS file: %d events, %d of them alerts; want %d observations and %d alerts", offered, alerts, queries, alerting)
	}
	hookWant := alerts + (offered-alerts)/10
	hook.mu.Lock()
	hookEvents, hookErrs := uint64(len(hook.events)), hook.errs
	hook.mu.Unlock()
	if hookEvents != hookWant || len(hookErrs) > 0 {
		t.Errorf("webhook got %d events (refused: %q), want %d", hookEvents, hookErrs, hookWant)
	}
	counters := outSummary(t, stderr)
	for name, n := range map[string]uint64{"ecs:" + ecsFile: offered, hookName: hookWant} {
		if c := counters[name]; c.sent != n || c.dropped != 0 || c.failed != 0 {
			t.Errorf("healthy output %s: %+v, want %d sent, 0 dropped, 0 failed", name, c, n)
		}
	}

	// The stalled output: dropped when full, failed at the drain
	// timeout, every event counted once.
	c, ok := counters[stalledName]
	if !ok {
		t.Fatalf("no summary line for %s:\n%s", stalledName, stderr)
	}
	if c.dropped == 0 || c.failed == 0 {
		t.Errorf("stalled output %s: %+v, want some dropped and some failed", stalledName, c)
	}
	if c.sent+c.dropped+c.failed != offered {
		t.Errorf("stalled output %s: %+v: sent+dropped+failed = %d, want the %d events offered", stalledName, c, c.sent+c.dropped+c.failed, offered)
	}
	// No batch was sent twice: the one cut short by the drain timeout
	// failed without a second attempt, which is not a retry.
	if c.retried != 0 {
		t.Errorf("stalled output %s: %+v: %d events counted as retried, but no batch was sent again (alert.Output.send counts a retry cut short by the drain deadline)", stalledName, c, c.retried)
	}

	// Failed deliveries make the run fail, naming the output.
	wantMsg := fmt.Sprintf("phonehome: writing events: %s: %d events not delivered (", stalledName, c.failed)
	if code != 1 || !strings.Contains(stderr, wantMsg) {
		t.Errorf("exit %d, want 1 with %q in:\n%s", code, wantMsg, stderr)
	}
	t.Logf("stalled output: %+v of %d events", c, offered)
}
