// Package alertmanager pushes alerts to a Prometheus Alertmanager through
// its API v2, so that its routing, grouping, silences and inhibitions apply
// to phonehome's findings like to any other alert.
//
// Alertmanager wants an alert to be sent again for as long as it holds:
// one it does not hear about again resolves when its endsAt passes. The
// sink therefore remembers the active alerts (one per internal host and
// rule) and re-posts them on a timer; a host that stops phoning home is
// no longer re-posted and its alert resolves by itself.
package alertmanager

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
)

// Defaults of the options.
const (
	DefaultAlertname = "PhonehomeContact"
	DefaultResend    = time.Minute
	DefaultActive    = time.Hour
	DefaultMaxAlerts = 10000
)

const (
	// requestTimeout bounds one POST, so that a hung Alertmanager fails
	// the batch (and it is retried) instead of stalling the output.
	requestTimeout = 10 * time.Second
	// maxAnnotation bounds each annotation, in bytes: wire strings can be
	// long, and a notification is no place for kilobytes of them.
	maxAnnotation = 1024
	// maxLabel bounds label values; they come from the configuration, not
	// the wire, but a label is an index key in Alertmanager.
	maxLabel = 128
	// chunk is the most alerts in one POST: a re-send of every active
	// alert is split so that no request body grows without bound.
	chunk = 500
	// endsFactor × resend is how far ahead endsAt is set: an alert
	// survives a few lost re-sends before Alertmanager resolves it.
	endsFactor = 4
)

// Sink posts alerts to one Alertmanager. Send and the re-send goroutine
// share the active alerts under mu.
type Sink struct {
	endpoint   string // …/api/v2/alerts, without credentials
	client     *http.Client
	user, pass string // basic auth from the URL's userinfo
	basic      bool
	tokenFile  string // bearer token, read on every request so that a rotated token is picked up
	alertname  string
	resend     time.Duration
	active     time.Duration
	maxAlerts  int
	instance   string // os.Hostname, for events without observer.hostname
	now        func() time.Time

	mu     sync.Mutex
	alerts map[string]*list.Element // label-set key → *entry in order
	order  *list.List               // least recently seen first

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// entry is one active alert.
type entry struct {
	key         string
	labels      map[string]string
	annotations map[string]string
	generator   string
	startsAt    time.Time // first seen, wall clock
	lastSeen    time.Time
}

// postableAlert is Alertmanager's API v2 postableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// New returns a sink for spec (alertmanager+http://HOST:PORT[/PREFIX] or
// alertmanager+https://…) and starts its re-send goroutine; Close stops it.
//
// Options: alertname=NAME (PhonehomeContact), resend=DUR (1m), active=DUR
// (1h), max-alerts=N (10000), ca=FILE, insecure-skip-verify=true,
// bearer-token-file=FILE; basic auth comes from the URL's user:password.
func New(spec *alert.Spec) (*Sink, error) {
	return newSink(spec, time.Now)
}

// newSink is New with the clock given, so that tests move time along.
func newSink(spec *alert.Spec, now func() time.Time) (*Sink, error) {
	if err := spec.Unknown("alertname", "resend", "active", "max-alerts", "ca", "insecure-skip-verify", "bearer-token-file"); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--output %s: "+format, append([]any{spec.Config.Name}, args...)...)
	}
	var https bool
	switch spec.Scheme {
	case "alertmanager+http":
	case "alertmanager+https":
		https = true
	default:
		return nil, fail("scheme %q: want alertmanager+http or alertmanager+https", spec.Scheme)
	}
	if spec.URL == nil || spec.URL.Host == "" {
		return nil, fail("no host")
	}
	if spec.Config.Observations > 0 {
		return nil, fail("Alertmanager takes alerts only: observations=%g is not supported", spec.Config.Observations)
	}
	s := &Sink{
		alertname: DefaultAlertname,
		resend:    DefaultResend,
		active:    DefaultActive,
		maxAlerts: DefaultMaxAlerts,
		now:       now,
		alerts:    make(map[string]*list.Element),
		order:     list.New(),
	}
	q := spec.Query
	var err error
	if q.Has("alertname") {
		s.alertname = q.Get("alertname")
		if s.alertname == "" || len(s.alertname) > maxLabel || !utf8.ValidString(s.alertname) {
			return nil, fail("option alertname=%q: want 1 to %d bytes of UTF-8", s.alertname, maxLabel)
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"resend", &s.resend}, {"active", &s.active}} {
		if !q.Has(d.name) {
			continue
		}
		v := q.Get(d.name)
		if *d.dst, err = time.ParseDuration(v); err != nil {
			return nil, fail("option %s=%q: %w", d.name, v, err)
		}
		if *d.dst <= 0 {
			return nil, fail("option %s=%q: must be positive", d.name, v)
		}
	}
	if q.Has("max-alerts") {
		v := q.Get("max-alerts")
		if s.maxAlerts, err = strconv.Atoi(v); err != nil {
			return nil, fail("option max-alerts=%q: %w", v, err)
		}
		if s.maxAlerts <= 0 {
			return nil, fail("option max-alerts=%q: must be positive", v)
		}
	}
	if !https && (q.Has("ca") || q.Has("insecure-skip-verify")) {
		return nil, fail("options ca and insecure-skip-verify need alertmanager+https")
	}
	tlsConf, err := alert.ClientTLS(q, "")
	if err != nil {
		return nil, fail("%w", err)
	}
	if u := spec.URL.User; u != nil {
		s.user, s.basic = u.Username(), true
		s.pass, _ = u.Password()
	}
	if q.Has("bearer-token-file") {
		if s.basic {
			return nil, fail("basic auth (user:password@) and bearer-token-file are exclusive")
		}
		s.tokenFile = q.Get("bearer-token-file")
		if _, err := s.token(); err != nil { // fail now rather than at the first alert
			return nil, fail("%w", err)
		}
	}
	end := &url.URL{Scheme: "http", Host: spec.URL.Host, Path: strings.TrimRight(spec.URL.Path, "/") + "/api/v2/alerts"}
	if https {
		end.Scheme = "https"
	}
	s.endpoint = end.String()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	s.client = &http.Client{
		Transport: tr,
		// A redirect would move the credentials elsewhere and turn the
		// POST into a GET: a wrong prefix is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.instance, _ = os.Hostname()

	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.loop(ctx)
	return s, nil
}

// token reads the bearer token file.
func (s *Sink) token() (string, error) {
	b, err := os.ReadFile(s.tokenFile)
	if err != nil {
		return "", fmt.Errorf("bearer-token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsFunc(t, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", fmt.Errorf("bearer-token-file %s: empty, or not one line of printable ASCII", s.tokenFile)
	}
	return t, nil
}

// Send records the alerts of the batch as active and posts the ones it
// holds at once; observations are skipped.
func (s *Sink) Send(ctx context.Context, batch []*alert.Record) error {
	now := s.now().Round(0) // wall clock: Alertmanager compares wall times
	var post []*entry
	seen := make(map[string]bool)
	s.mu.Lock()
	for _, r := range batch {
		e := r.Event
		if e == nil || e.Event.Kind != alert.KindAlert {
			continue
		}
		n := s.observe(e, now)
		if !seen[n.key] {
			seen[n.key] = true
			post = append(post, n)
		}
	}
	alerts := s.postable(post, now)
	s.mu.Unlock()
	return s.post(ctx, alerts)
}

// observe records e as seen now and returns its (updated) entry. s.mu is held.
func (s *Sink) observe(e *alert.Event, now time.Time) *entry {
	labels := s.labels(e)
	key := labelKey(labels)
	if el, ok := s.alerts[key]; ok {
		n := el.Value.(*entry)
		n.lastSeen = now
		n.annotations = annotations(e, labels["host"])
		n.generator = generatorURL(e)
		s.order.MoveToBack(el)
		return n
	}
	n := &entry{key: key, labels: labels, annotations: annotations(e, labels["host"]), generator: generatorURL(e), startsAt: now, lastSeen: now}
	s.alerts[key] = s.order.PushBack(n)
	for s.order.Len() > s.maxAlerts {
		old := s.order.Front()
		delete(s.alerts, old.Value.(*entry).key)
		s.order.Remove(old)
	}
	return n
}

// postable builds the alerts to post for entries. s.mu is held: the
// entries' maps are replaced, never changed, so they may be encoded after.
func (s *Sink) postable(entries []*entry, now time.Time) []postableAlert {
	ends := now.Add(endsFactor * s.resend).UTC()
	out := make([]postableAlert, len(entries))
	for i, n := range entries {
		out[i] = postableAlert{Labels: n.labels, Annotations: n.annotations, StartsAt: n.startsAt.UTC(), EndsAt: ends, GeneratorURL: n.generator}
	}
	return out
}

// loop re-posts the active alerts every resend until ctx ends.
func (s *Sink) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.resend)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// An error is not reported: the next tick tries again, and
			// Send's errors tell the output that Alertmanager is down.
			_ = s.resendActive(ctx)
		}
	}
}

// resendActive forgets the alerts not seen for s.active (they resolve in
// Alertmanager when their endsAt passes) and re-posts the others.
func (s *Sink) resendActive(ctx context.Context) error {
	now := s.now().Round(0)
	s.mu.Lock()
	for el := s.order.Front(); el != nil; {
		next := el.Next()
		if n := el.Value.(*entry); now.Sub(n.lastSeen) >= s.active {
			delete(s.alerts, n.key)
			s.order.Remove(el)
		}
		el = next
	}
	entries := make([]*entry, 0, s.order.Len())
	for el := s.order.Front(); el != nil; el = el.Next() {
		entries = append(entries, el.Value.(*entry))
	}
	alerts := s.postable(entries, now)
	s.mu.Unlock()
	return s.post(ctx, alerts)
}

// post sends alerts in chunks.
func (s *Sink) post(ctx context.Context, alerts []postableAlert) error {
	for c := range slices.Chunk(alerts, chunk) {
		if err := s.postChunk(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) postChunk(ctx context.Context, alerts []postableAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return alert.Permanent(fmt.Errorf("alertmanager: encoding alerts: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return alert.Permanent(fmt.Errorf("alertmanager: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	if s.basic {
		req.SetBasicAuth(s.user, s.pass)
	}
	if s.tokenFile != "" {
		tok, err := s.token()
		if err != nil {
			return fmt.Errorf("alertmanager: %w", err) // the file may be back by the retry
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager: posting %d alerts: %w", len(alerts), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("alertmanager: posting %d alerts: %s: %s", len(alerts), resp.Status, printable(string(msg), 256))
	if code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout {
		return err
	}
	// Alertmanager refused the alerts (malformed, unauthorised, wrong
	// path): sending them again will not help.
	return alert.Permanent(err)
}

// Close stops the re-send goroutine. The active alerts are not resolved:
// a restarting sensor should not clear them; they resolve by themselves
// if it does not come back.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.client.CloseIdleConnections()
	})
	return nil
}

// labels returns the alert's label set: only values from the
// configuration and the sensor itself, never wire strings, so that the
// set of label values stays small and safe to route and group on.
func (s *Sink) labels(e *alert.Event) map[string]string {
	l := map[string]string{"alertname": s.alertname}
	set := func(k, v string) {
		if v = printable(v, maxLabel); v != "" {
			l[k] = v
		}
	}
	if r := e.Rule; r != nil {
		set("profile", r.Ruleset)
		set("rule", r.ID)
		set("category", r.Category)
	}
	set("severity", severity(e.Event.Severity))
	host := e.Source.IP
	if p := e.Phonehome; p != nil {
		if p.Host != "" {
			host = p.Host
		}
		if p.Status == "still-phoning-home" {
			l["status"] = p.Status
		}
	}
	set("host", host)
	inst := e.Observer.Hostname
	if inst == "" {
		inst = s.instance
	}
	set("instance", inst)
	return l
}

// severity is the rule severity an ECS event.severity stands for.
func severity(score int) string {
	s, _ := alert.ScoreSeverity(score)
	return s.String()
}

// labelKey is a canonical form of a label set.
func labelKey(l map[string]string) string {
	b, _ := json.Marshal(l) // map keys are sorted
	return string(b)
}

// annotations describes the contact. The wire strings live here only,
// cleaned and bounded; encoding/json escapes them for the request.
func annotations(e *alert.Event, host string) map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if v = printable(v, maxAnnotation); v != "" {
			a[k] = v
		}
	}
	var matched []string
	if t := e.Threat; t != nil {
		for _, en := range t.Enrichments {
			if en.Matched.Atomic != "" && !slices.Contains(matched, en.Matched.Atomic) {
				matched = append(matched, en.Matched.Atomic)
			}
		}
	}
	what := strings.Join(matched, ", ")
	if what == "" {
		what = e.Destination.IP
	}
	ruleName := ""
	if r := e.Rule; r != nil {
		ruleName = r.Name
		set("rule_name", r.Name)
		set("reference", r.Reference)
		set("description", r.Description)
	}
	if e.Event.Reason != "" {
		set("description", e.Event.Reason)
	}
	summary := fmt.Sprintf("%s contacted %s", host, what)
	if ruleName != "" {
		summary += " (" + ruleName + ")"
	}
	if p := e.Phonehome; p != nil && p.Status == "still-phoning-home" {
		summary += ", still phoning home"
		if p.Deadline != "" {
			summary += " after its " + p.Deadline + " deadline"
		}
	}
	set("summary", summary)
	set("matched", what)
	if p := e.Phonehome; p != nil {
		set("deadline", p.Deadline)
	}
	if e.Destination.IP != "" {
		set("destination", e.Destination.IP+" port "+strconv.Itoa(int(e.Destination.Port)))
	}
	set("protocol", e.Network.Protocol)
	if t := e.TLS; t != nil {
		set("tls_server_name", t.Client.ServerName)
	}
	if d := e.DNS; d != nil {
		set("dns_question", d.Question.Name)
	}
	if u := e.URL; u != nil {
		set("url", u.Original)
	}
	if u := e.UserAgent; u != nil {
		set("user_agent", u.Original)
	}
	if !e.Timestamp.IsZero() {
		set("last_contact", e.Timestamp.UTC().Format(time.RFC3339))
	}
	return a
}

// generatorURL is the rule's reference when it is an http(s) URL:
// Alertmanager shows it as the link to the alert's source.
func generatorURL(e *alert.Event) string {
	if e.Rule == nil || e.Rule.Reference == "" || len(e.Rule.Reference) > maxAnnotation {
		return ""
	}
	u, err := url.Parse(e.Rule.Reference)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// printable makes s safe to show: invalid UTF-8 becomes U+FFFD, control
// and bidirectional formatting characters (a newline, an ANSI escape, a
// right-to-left override) become \x1b-style escapes, and the result is
// cut to at most max bytes on a character boundary, ending in "…" when cut.
func printable(s string, max int) string {
	const ellipsis = "…"
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean && len(s) <= max {
		return s
	}
	var b strings.Builder
	var ends []int // where each piece ends, so that a cut keeps escapes whole
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		var piece string
		switch {
		case r < 0x80 && unicode.IsControl(r):
			piece = fmt.Sprintf(`\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			piece = fmt.Sprintf(`\u%04x`, r)
		default:
			piece = string(r)
		}
		if b.Len()+len(piece) > max {
			out := b.String()
			n := 0
			for _, e := range ends {
				if e > max-len(ellipsis) {
					break
				}
				n = e
			}
			return out[:n] + ellipsis
		}
		b.WriteString(piece)
		ends = append(ends, b.Len())
	}
	return b.String()
}
