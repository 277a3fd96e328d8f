package alertmanager

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// alertmanager is one running Alertmanager.
type alertmanager struct {
	*testsvc.Alertmanager
	base   string // http://127.0.0.1:PORT or https://…
	client *http.Client
	user   string
	pass   string
}

// startAlertmanager runs the real Alertmanager with a null receiver and
// no clustering; webConfig, when not empty, is its --web.config.file
// (TLS, basic auth).
func startAlertmanager(t *testing.T, webConfig string, client *http.Client, user, pass string) *alertmanager {
	t.Helper()
	am := testsvc.StartAlertmanager(t, testsvc.AlertmanagerOptions{WebConfig: webConfig, Client: client, User: user, Password: pass})
	if client == nil {
		client = http.DefaultClient
	}
	return &alertmanager{Alertmanager: am, base: am.URL, client: client, user: user, pass: pass}
}

// gettable is the part of Alertmanager's gettableAlert the tests read.
type gettable struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Generator   string            `json:"generatorURL"`
}

// alerts returns the active alerts named alertname, by host label.
func (am *alertmanager) alerts(t *testing.T, alertname string) map[string]gettable {
	t.Helper()
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", alertname)}}
	req, _ := http.NewRequest(http.MethodGet, am.base+"/api/v2/alerts?"+q.Encode(), nil)
	if am.user != "" {
		req.SetBasicAuth(am.user, am.pass)
	}
	resp, err := am.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET alerts: %s", resp.Status)
	}
	var list []gettable
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]gettable)
	for _, a := range list {
		if _, dup := out[a.Labels["host"]]; dup {
			t.Errorf("two alerts for host %q", a.Labels["host"])
		}
		out[a.Labels["host"]] = a
	}
	return out
}

// clock is a settable wall clock: the real one plus an offset, so that
// Alertmanager (which uses the real one) agrees with the sink.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time              { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration)     { c.offset.Add(int64(d)) }
func realClock() func() time.Time            { return time.Now }
func (c *clock) fn() func() time.Time        { return c.now }
func rec(es ...*alert.Event) []*alert.Record { return recs(es) }

func recs(es []*alert.Event) []*alert.Record {
	out := make([]*alert.Record, len(es))
	for i, e := range es {
		out[i] = alert.NewRecord(e)
	}
	return out
}

// sink builds a sink on spec with the clock given, closed at the end.
func sink(t *testing.T, spec string, now func() time.Time) *Sink {
	t.Helper()
	sp, err := alert.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSink(sp, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func amSpec(am *alertmanager, opts string) string {
	return strings.Replace(am.base, "http", "alertmanager+http", 1) + "/?" + opts
}

// contact is an alert as the pipeline builds it.
func contact(host, rule string, score int, name string) *alert.Event {
	return &alert.Event{
		Timestamp:   time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Event:       alert.EventMeta{Kind: alert.KindAlert, Severity: score, Reason: "name under kaspersky.com"},
		Network:     alert.Network{Protocol: "dns", Transport: "udp"},
		Source:      alert.Endpoint{IP: host, Port: 5353},
		Destination: alert.Endpoint{IP: "192.0.2.53", Port: 53},
		DNS:         &alert.DNS{Type: "query", Question: alert.DNSQuestion{Name: name, Type: "A"}},
		Rule: &alert.Rule{ID: rule, Name: "Kaspersky updates", Category: "update", Ruleset: "kaspersky",
			Reference: "https://support.kaspersky.com/ports"},
		Threat:    &alert.Threat{Enrichments: []alert.Enrichment{{Matched: alert.Matched{Atomic: name, Field: "dns.question.name"}}}},
		Observer:  alert.Observer{Hostname: "sensor-1", Type: "sensor", Product: "phonehome"},
		Phonehome: &alert.PhonehomeExt{Host: host, Category: []string{"update"}},
	}
}

// hostile is a wire name an attacker chose.
var hostile = "evil\n\"quoted\" <script>alert(1)</script>\x1b[31mred\u202egnp.exe\xff\xfe" + strings.Repeat("ä", 2000)

func TestPushAndReadBack(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	clk := &clock{}
	s := sink(t, amSpec(am, "alertname=ReadBack"), clk.fn())

	fromSource := contact("10.0.0.2", "kl-update", 47, "dnl-01.geo.kaspersky.com")
	fromSource.Phonehome = nil // not known internal: the source address is the host
	overdue := contact("10.0.0.3", "kl-ksn", 99, "ksn1.kaspersky-labs.com")
	overdue.Rule.Category = "ksn-telemetry"
	overdue.Phonehome.Status = "still-phoning-home"
	overdue.Phonehome.Deadline = "2025-01-31"
	observation := contact("10.0.0.4", "kl-update", 47, "kaspersky.com")
	observation.Event.Kind = alert.KindEvent
	hostileAgain := contact("10.0.0.1", "kl-update", 73, hostile)
	hostileAgain.Event.Severity = 73

	sentAt := clk.now()
	if err := s.Send(context.Background(), rec(
		contact("10.0.0.1", "kl-update", 73, "first.kaspersky.com"),
		hostileAgain, // same host × rule: the same alert, the later annotations
		fromSource, overdue, observation,
	)); err != nil {
		t.Fatal(err)
	}
	got := am.alerts(t, "ReadBack")

	base := map[string]string{"alertname": "ReadBack", "profile": "kaspersky", "category": "update", "instance": "sensor-1"}
	with := func(kv ...string) map[string]string {
		m := make(map[string]string)
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		host    string
		labels  map[string]string
		matched string // prefix of the matched annotation
	}{
		{"10.0.0.1", with("host", "10.0.0.1", "rule", "kl-update", "severity", "high"), `evil\x0a"quoted" <script>`},
		{"10.0.0.2", with("host", "10.0.0.2", "rule", "kl-update", "severity", "medium"), "dnl-01.geo.kaspersky.com"},
		{"10.0.0.3", with("host", "10.0.0.3", "rule", "kl-ksn", "severity", "critical", "category", "ksn-telemetry",
			"status", "still-phoning-home"), "ksn1.kaspersky-labs.com"},
	}
	if len(got) != len(tests) {
		t.Errorf("got %d alerts, want %d (the observation is not pushed): %v", len(got), len(tests), got)
	}
	for _, tt := range tests {
		a, ok := got[tt.host]
		if !ok {
			t.Errorf("no alert for %s", tt.host)
			continue
		}
		if fmt.Sprint(a.Labels) != fmt.Sprint(tt.labels) {
			t.Errorf("%s labels:\n got %v\nwant %v", tt.host, a.Labels, tt.labels)
		}
		if !strings.HasPrefix(a.Annotations["matched"], tt.matched) {
			t.Errorf("%s matched annotation %q, want it to start with %q", tt.host, a.Annotations["matched"], tt.matched)
		}
		if a.Generator != "https://support.kaspersky.com/ports" {
			t.Errorf("%s generatorURL %q", tt.host, a.Generator)
		}
		if d := a.StartsAt.Sub(sentAt); d < -time.Second || d > time.Second {
			t.Errorf("%s startsAt %v, want about %v", tt.host, a.StartsAt, sentAt)
		}
		if d := a.EndsAt.Sub(a.StartsAt); d != endsFactor*DefaultResend {
			t.Errorf("%s endsAt %v after startsAt, want %v", tt.host, d, endsFactor*DefaultResend)
		}
		for k, v := range a.Annotations {
			if !utf8.ValidString(v) || len(v) > maxAnnotation || strings.ContainsFunc(v, func(r rune) bool {
				return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
			}) {
				t.Errorf("%s annotation %s=%q: not bounded printable UTF-8", tt.host, k, v)
			}
		}
	}
	if s := got["10.0.0.3"].Annotations["summary"]; !strings.Contains(s, "still phoning home after its 2025-01-31 deadline") {
		t.Errorf("overdue summary %q", s)
	}
	h := got["10.0.0.1"]
	for k, v := range h.Labels {
		if strings.Contains(v, "evil") || strings.Contains(v, "script") || strings.Contains(v, "first.") {
			t.Errorf("wire string in label %s=%q", k, v)
		}
	}
	// The hostile name arrives whole up to the bound, every dangerous
	// character shown rather than acted on.
	for _, want := range []string{`"quoted" <script>alert(1)</script>`, `\x1b[31mred`, `\u202egnp.exe`, "exe\uFFFDää", "…"} {
		if !strings.Contains(h.Annotations["matched"], want) || !strings.Contains(h.Annotations["dns_question"], want) {
			t.Errorf("matched/dns_question annotations lack %q: %q", want, h.Annotations["matched"])
		}
	}
	if len(h.Annotations["matched"]) < maxAnnotation-8 {
		t.Errorf("matched annotation cut short: %d bytes", len(h.Annotations["matched"]))
	}
}

func TestResendLoopKeepsActive(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	const resend = 200 * time.Millisecond
	s := sink(t, amSpec(am, "alertname=Resend&resend=200ms"), realClock())
	if err := s.Send(context.Background(), rec(contact("10.1.0.1", "kl-update", 73, "a.kaspersky.com"))); err != nil {
		t.Fatal(err)
	}
	first := am.alerts(t, "Resend")["10.1.0.1"]
	if d := first.EndsAt.Sub(first.StartsAt); d != endsFactor*resend {
		t.Fatalf("endsAt - startsAt = %v, want %v", d, endsFactor*resend)
	}
	time.Sleep(3 * resend)
	later := am.alerts(t, "Resend")["10.1.0.1"]
	if !later.StartsAt.Equal(first.StartsAt) {
		t.Errorf("startsAt moved: %v, then %v", first.StartsAt, later.StartsAt)
	}
	if d := later.EndsAt.Sub(first.EndsAt); d < resend {
		t.Errorf("endsAt moved by %v in %v, want at least %v: not re-sent", d, 3*resend, resend)
	}
	// Closed, the sink re-sends no more.
	s.Close()
	// A re-send posted just before Close may show in the API a moment
	// later: Alertmanager stores posted alerts asynchronously.
	time.Sleep(resend)
	closed := am.alerts(t, "Resend")["10.1.0.1"]
	time.Sleep(2 * resend)
	if after := am.alerts(t, "Resend")["10.1.0.1"]; !after.EndsAt.Equal(closed.EndsAt) {
		t.Errorf("endsAt moved after Close: %v, then %v", closed.EndsAt, after.EndsAt)
	}
}

// TestUnseenStopsResending moves the sink's clock past active: the
// alert not seen since is dropped and no longer re-sent, the other one is.
func TestUnseenStopsResending(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	clk := &clock{}
	// resend=1h: the goroutine stays out of the way; resendActive is
	// called by hand.
	s := sink(t, amSpec(am, "alertname=Unseen&resend=1h&active=10m"), clk.fn())
	ctx := context.Background()
	stale, fresh := contact("10.2.0.1", "kl-update", 73, "a.kaspersky.com"), contact("10.2.0.2", "kl-update", 73, "b.kaspersky.com")
	if err := s.Send(ctx, rec(stale, fresh)); err != nil {
		t.Fatal(err)
	}
	before := am.alerts(t, "Unseen")
	clk.advance(6 * time.Minute)
	if err := s.Send(ctx, rec(fresh)); err != nil {
		t.Fatal(err)
	}
	clk.advance(6 * time.Minute) // stale: 12m unseen; fresh: 6m
	if err := s.resendActive(ctx); err != nil {
		t.Fatal(err)
	}
	after := am.alerts(t, "Unseen")
	if !after["10.2.0.1"].EndsAt.Equal(before["10.2.0.1"].EndsAt) {
		t.Errorf("unseen alert re-sent: endsAt %v, then %v", before["10.2.0.1"].EndsAt, after["10.2.0.1"].EndsAt)
	}
	if d := after["10.2.0.2"].EndsAt.Sub(before["10.2.0.2"].EndsAt); d < 12*time.Minute || d > 12*time.Minute+time.Second {
		t.Errorf("seen alert's endsAt moved by %v, want 12m (re-sent at the fake now)", d)
	}
	if !after["10.2.0.2"].StartsAt.Equal(before["10.2.0.2"].StartsAt) {
		t.Errorf("seen alert's startsAt moved: %v, then %v", before["10.2.0.2"].StartsAt, after["10.2.0.2"].StartsAt)
	}
	s.mu.Lock()
	n := len(s.alerts)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d active alerts kept, want 1", n)
	}
}

// TestUnseenResolves checks, in real time, that Alertmanager resolves an
// alert the sink stopped re-sending while the one still seen stays.
func TestUnseenResolves(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	s := sink(t, amSpec(am, "alertname=Resolves&resend=100ms&active=300ms"), realClock())
	ctx := context.Background()
	fresh := contact("10.3.0.2", "kl-update", 73, "b.kaspersky.com")
	if err := s.Send(ctx, rec(contact("10.3.0.1", "kl-update", 73, "a.kaspersky.com"), fresh)); err != nil {
		t.Fatal(err)
	}
	if n := len(am.alerts(t, "Resolves")); n != 2 {
		t.Fatalf("%d alerts, want 2", n)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		if err := s.Send(ctx, rec(fresh)); err != nil {
			t.Fatal(err)
		}
		got := am.alerts(t, "Resolves")
		if _, ok := got["10.3.0.2"]; !ok {
			t.Fatal("the alert still seen was resolved")
		}
		if _, ok := got["10.3.0.1"]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unseen alert is still active after 3s (active=300ms, endsAt=now+400ms)")
		}
	}
}

func TestMaxAlertsEvictsOldest(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	s := sink(t, amSpec(am, "alertname=Evict&max-alerts=2"), realClock())
	ctx := context.Background()
	for _, h := range []string{"10.4.0.1", "10.4.0.2", "10.4.0.1", "10.4.0.3"} {
		if err := s.Send(ctx, rec(contact(h, "kl-update", 73, "a.kaspersky.com"))); err != nil {
			t.Fatal(err)
		}
	}
	var kept []string
	s.mu.Lock()
	for el := s.order.Front(); el != nil; el = el.Next() {
		kept = append(kept, el.Value.(*entry).labels["host"])
	}
	s.mu.Unlock()
	if want := "[10.4.0.1 10.4.0.3]"; fmt.Sprint(kept) != want {
		t.Errorf("kept %v, want %s (10.4.0.2 least recently seen)", kept, want)
	}
}

func TestAlertmanagerDown(t *testing.T) {
	am := startAlertmanager(t, "", nil, "", "")
	s := sink(t, amSpec(am, "alertname=Down"), realClock())
	ctx := context.Background()
	batch := rec(contact("10.5.0.1", "kl-update", 73, "a.kaspersky.com"))
	if err := s.Send(ctx, batch); err != nil {
		t.Fatalf("up: %v", err)
	}
	am.Kill()
	err := s.Send(ctx, batch)
	if err == nil || alert.IsPermanent(err) {
		t.Fatalf("down: got %v, want a retryable error", err)
	}
}

// TestStatus checks how answers other than Alertmanager's own are taken,
// and that the bearer token is sent: Alertmanager itself answers neither
// 5xx on demand nor checks bearer tokens.
func TestStatus(t *testing.T) {
	var code atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if r.URL.Path != "/prefix/api/v2/alerts" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
		fmt.Fprint(w, "no\x1b[2J")
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sink(t, "alertmanager+"+srv.URL+"/prefix/?bearer-token-file="+tok, realClock())
	tests := []struct {
		code      int
		fails     bool
		permanent bool
	}{
		{200, false, false},
		{400, true, true},
		{404, true, true},
		{429, true, false},
		{500, true, false},
		{503, true, false},
	}
	for _, tt := range tests {
		code.Store(int32(tt.code))
		err := s.Send(context.Background(), rec(contact("10.6.0.1", "kl-update", 73, "a.kaspersky.com")))
		if (err != nil) != tt.fails || alert.IsPermanent(err) != tt.permanent {
			t.Errorf("HTTP %d: error %v (permanent %v), want failure %v, permanent %v", tt.code, err, alert.IsPermanent(err), tt.fails, tt.permanent)
		}
		if err != nil && strings.Contains(err.Error(), "\x1b") {
			t.Errorf("HTTP %d: raw escape in error %q", tt.code, err)
		}
	}
	if got := auth.Load(); got != "Bearer s3cret-token" {
		t.Errorf("Authorization %q", got)
	}
	// Observations only: nothing is posted.
	code.Store(500)
	obs := contact("10.6.0.2", "kl-update", 73, "a.kaspersky.com")
	obs.Event.Kind = alert.KindEvent
	if err := s.Send(context.Background(), rec(obs)); err != nil {
		t.Errorf("observations only: %v", err)
	}
}

// TestTLSAndBasicAuth runs Alertmanager with TLS and basic auth.
func TestTLSAndBasicAuth(t *testing.T) {
	certs := testsvc.Certs(t, t.TempDir())
	certFile, keyFile, caFile := certs.Cert, certs.Key, certs.CA
	pool := certs.Pool(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("p@ss:w"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  sensor: %s\n", certFile, keyFile, hash)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	am := startAlertmanager(t, web, client, "sensor", "p@ss:w")
	hostport := strings.TrimPrefix(am.base, "https://")

	tests := []struct {
		name      string
		spec      string
		fails     bool
		permanent bool
	}{
		{"ca", "alertmanager+https://sensor:p%40ss%3Aw@" + hostport + "?alertname=TLS&ca=" + caFile, false, false},
		{"insecure", "alertmanager+https://sensor:p%40ss%3Aw@" + hostport + "?alertname=TLS&insecure-skip-verify=true", false, false},
		{"unknown CA", "alertmanager+https://sensor:p%40ss%3Aw@" + hostport + "?alertname=TLS", true, false},
		{"wrong password", "alertmanager+https://sensor:nope@" + hostport + "?alertname=TLS&ca=" + caFile, true, true},
		{"no password", "alertmanager+https://" + hostport + "?alertname=TLS&ca=" + caFile, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sink(t, tt.spec, realClock())
			host := fmt.Sprintf("10.7.0.%d", i+1)
			err := s.Send(context.Background(), rec(contact(host, "kl-update", 73, "a.kaspersky.com")))
			if (err != nil) != tt.fails || alert.IsPermanent(err) != tt.permanent {
				t.Fatalf("error %v (permanent %v), want failure %v, permanent %v", err, alert.IsPermanent(err), tt.fails, tt.permanent)
			}
			if _, ok := am.alerts(t, "TLS")[host]; ok == tt.fails {
				t.Errorf("alert in Alertmanager: %v, want %v", ok, !tt.fails)
			}
			if strings.Contains(s.endpoint, "p@ss") || strings.Contains(s.endpoint, "sensor@") {
				t.Errorf("credentials in endpoint %q", s.endpoint)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("two words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec string
		err  string // "" for none
	}{
		{"alertmanager+http://am:9093", ""},
		{"alertmanager+https://am:9093/am/?alertname=Kaspersky&resend=30s&active=2h&max-alerts=5&insecure-skip-verify=true&bearer-token-file=" + tok, ""},
		{"alertmanager+http://am:9093?observations=0.5", "observations=0.5 is not supported"},
		{"alertmanager+http://am:9093?observations=all", "observations=1 is not supported"},
		{"alertmanager+http://am:9093?topic=x", `unknown option "topic"`},
		{"alertmanager+http://am:9093?resend=0s", "resend=\"0s\": must be positive"},
		{"alertmanager+http://am:9093?resend=soon", "resend=\"soon\""},
		{"alertmanager+http://am:9093?active=-1h", "active=\"-1h\": must be positive"},
		{"alertmanager+http://am:9093?max-alerts=0", "max-alerts=\"0\": must be positive"},
		{"alertmanager+http://am:9093?max-alerts=many", "max-alerts=\"many\""},
		{"alertmanager+http://am:9093?alertname=", "alertname=\"\""},
		{"alertmanager+http://am:9093?ca=" + notPEM, "need alertmanager+https"},
		{"alertmanager+https://am:9093?ca=" + notPEM, "no PEM certificate"},
		{"alertmanager+https://am:9093?ca=/nonexistent", "no such file"},
		{"alertmanager+http://am:9093?insecure-skip-verify=true", "need alertmanager+https"},
		{"alertmanager+https://am:9093?insecure-skip-verify=maybe", "insecure-skip-verify=\"maybe\""},
		{"alertmanager+http://u:p@am:9093?bearer-token-file=" + tok, "exclusive"},
		{"alertmanager+http://am:9093?bearer-token-file=/nonexistent", "no such file"},
		{"alertmanager+http://am:9093?bearer-token-file=" + bad, "not one line of printable ASCII"},
		{"alertmanager://am:9093", "want alertmanager+http or alertmanager+https"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sp, err := alert.ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(sp)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("no error, want %q", tt.err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q, want %q in it", err, tt.err)
			}
		})
	}
	s := sink(t, "alertmanager+https://am:9093/am/?alertname=Kaspersky&resend=30s&active=2h&max-alerts=5", realClock())
	if s.endpoint != "https://am:9093/am/api/v2/alerts" || s.alertname != "Kaspersky" || s.resend != 30*time.Second || s.active != 2*time.Hour || s.maxAlerts != 5 {
		t.Errorf("options not taken: %+v", s)
	}
	d := sink(t, "alertmanager+http://am:9093", realClock())
	if d.endpoint != "http://am:9093/api/v2/alerts" || d.alertname != DefaultAlertname || d.resend != DefaultResend || d.active != DefaultActive || d.maxAlerts != DefaultMaxAlerts {
		t.Errorf("defaults not taken: %+v", d)
	}
}

func TestSeverity(t *testing.T) {
	// The scores pipeline.severityScore gives info … critical.
	for score, want := range map[int]string{0: "info", 1: "info", 21: "low", 47: "medium", 73: "high", 99: "critical", 100: "critical"} {
		if got := severity(score); got != want {
			t.Errorf("severity(%d) = %q, want %q", score, got, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"kaspersky.com", 64, "kaspersky.com"},
		{"a\nb\tc\x1b[0m\x7f", 64, `a\x0ab\x09c\x1b[0m\x7f`},
		{"bad\xffutf8", 64, "bad\uFFFDutf8"},
		{"rtl\u202eexe\u2028", 64, `rtl\u202eexe\u2028`},
		{"\u0085next", 64, `\u0085next`},
		{"abcdefgh", 8, "abcdefgh"},
		{"abcdefghi", 8, "abcde…"},
		{"ääää", 7, "ää…"},         // never half a character
		{"ab\x1bcdefgh", 8, "ab…"}, // never half an escape
		{"日本語テキスト", 12, "日本語…"},    // 3 bytes each
	}
	for _, tt := range tests {
		got := printable(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("printable(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if len(got) > tt.max || !utf8.ValidString(got) {
			t.Errorf("printable(%q, %d) = %q: too long or invalid", tt.in, tt.max, got)
		}
	}
}
