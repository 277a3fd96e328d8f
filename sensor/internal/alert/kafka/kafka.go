// Package kafka is the Kafka output: `kafka://BROKER[,BROKER…]/TOPIC`.
//
// Alerts go to TOPIC and observations to TOPIC.observations (or the topic
// named by observations-topic=), one record per event: the key is the
// source IP, so that one host's events land on one partition and stay in
// order; the value is the ECS JSON line; a header event.kind tells alerts
// from observations without parsing the value.
//
// Delivery is at least once: Send waits until the brokers acknowledged
// every record of the batch, and any failure makes the output framework
// resend the whole batch, so records that went through before the failure
// are written again. Consumers that need exactly once deduplicate.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
)

// Defaults.
const (
	DefaultPort        = "9092"
	DefaultClientID    = "phonehome"
	DefaultTimeout     = 10 * time.Second
	ObservationsSuffix = ".observations"
	// HeaderKind is the record header holding event.kind.
	HeaderKind = "event.kind"
)

// options are the sink's own query options, for spec.Unknown.
var options = []string{
	"observations-topic",
	"tls", "ca", "cert", "key", "server-name", "insecure-skip-verify",
	"sasl", "user", "password-file",
	"compression", "acks", "client-id", "timeout",
}

// Sink produces events to Kafka. It is used from one goroutine (the
// output's), as alert.Sink promises.
type Sink struct {
	cl          *kgo.Client
	name        string
	topic       string // alerts
	obsTopic    string // observations
	timeout     time.Duration
	closeOnce   sync.Once
	closeErr    error
	abandoned   sync.WaitGroup // Sends that returned before kgo answered
	brokers     []string
	compression string
}

// New validates the spec's options and builds the client. It does not
// connect: kgo dials on the first produce, so a broker that is down at
// start only delays delivery (the framework retries) instead of stopping
// the sensor.
func New(spec *alert.Spec) (*Sink, error) {
	if spec == nil || spec.URL == nil {
		return nil, errors.New("kafka: no URL")
	}
	if err := refusePassword(spec); err != nil {
		return nil, err
	}
	if err := spec.Unknown(options...); err != nil {
		return nil, err // Unknown names the spec without its password
	}
	s := &Sink{name: spec.Config.Name}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("--output %s: "+format, append([]any{s.name}, a...)...)
	}
	q := spec.Query

	brokers, err := parseBrokers(spec.URL.Host)
	if err != nil {
		return nil, fail("%w", err)
	}
	s.brokers = brokers
	s.topic = strings.TrimPrefix(spec.URL.Path, "/")
	if err := checkTopic(s.topic); err != nil {
		return nil, fail("topic: %w (want kafka://BROKER[,BROKER]/TOPIC)", err)
	}
	s.obsTopic = s.topic + ObservationsSuffix
	if q.Has("observations-topic") {
		s.obsTopic = q.Get("observations-topic")
	}
	if err := checkTopic(s.obsTopic); err != nil {
		return nil, fail("observations-topic: %w", err)
	}

	clientID := DefaultClientID
	if q.Has("client-id") {
		clientID = q.Get("client-id")
		if err := checkClientID(clientID); err != nil {
			return nil, fail("client-id: %w", err)
		}
	}
	s.timeout = DefaultTimeout
	if q.Has("timeout") {
		s.timeout, err = time.ParseDuration(q.Get("timeout"))
		if err == nil && s.timeout < time.Second {
			err = errors.New("kgo's least record timeout is 1s")
		}
		if err != nil {
			return nil, fail("timeout=%q: %w", q.Get("timeout"), err)
		}
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		// Send is synchronous and gets whole batches from the framework:
		// lingering would only add latency to every alert.
		kgo.ProducerLinger(0),
		// Bound everything by the timeout, so that a dead cluster makes
		// Send fail and the framework's own backoff, retry counters and
		// LastError take over, rather than kgo retrying for ever inside.
		kgo.RecordDeliveryTimeout(s.timeout),
		kgo.RecordRetries(10),
		kgo.UnknownTopicRetries(3),
		kgo.ProduceRequestTimeout(s.timeout),
		kgo.DialTimeout(min(s.timeout, 10*time.Second)),
		kgo.RequestTimeoutOverhead(min(s.timeout, 10*time.Second)),
		// kgo refreshes metadata at most every 5 s by default, so that a
		// cluster coming back would fail a few more Sends for nothing.
		kgo.MetadataMinAge(500 * time.Millisecond),
	}

	comp, err := compression(q.Get("compression"))
	if err != nil {
		return nil, fail("%w", err)
	}
	s.compression = comp.name
	opts = append(opts, kgo.ProducerBatchCompression(comp.codec))

	switch a := q.Get("acks"); a {
	case "", "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		// Idempotent writes need acks from all in-sync replicas.
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fail("acks=%q: want all or leader", a)
	}

	tcfg, err := tlsConfig(q)
	if err != nil {
		return nil, fail("%w", err)
	}
	if tcfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tcfg))
	}

	mech, err := saslMechanism(spec)
	if err != nil {
		return nil, fail("%w", err)
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}

	s.cl, err = kgo.NewClient(opts...)
	if err != nil {
		return nil, fail("%w", err)
	}
	return s, nil
}

// refusePassword refuses a password in the query string: URLs end up in
// shell history, process lists and logs. The password goes in
// password-file= (or, for those who accept the risk, the URL's userinfo).
func refusePassword(spec *alert.Spec) error {
	for _, k := range []string{"password", "pass", "sasl-password"} {
		if spec.Query.Has(k) {
			return fmt.Errorf("--output %s: option %s= refused: put the password in a file and use password-file=FILE", spec.Config.Name, k)
		}
	}
	return nil
}

// parseBrokers splits the URL's host on commas and adds the default port
// where a broker has none.
func parseBrokers(hosts string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(hosts, ",") {
		if b == "" {
			return nil, fmt.Errorf("empty broker in %q", hosts)
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			// No port: a bare name, IPv4 address or [IPv6] address.
			host, port = strings.TrimSuffix(strings.TrimPrefix(b, "["), "]"), DefaultPort
			if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(b, "[")) {
				return nil, fmt.Errorf("broker %q: %w", b, err)
			}
		}
		if host == "" {
			return nil, fmt.Errorf("broker %q: no host", b)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("broker %q: bad port %q", b, port)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// checkTopic applies Kafka's own rule for topic names, so that a typo is
// reported at start rather than as a produce error later.
func checkTopic(t string) error {
	if t == "" {
		return errors.New("empty")
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic", t)
	}
	if len(t) > 249 {
		return fmt.Errorf("longer than 249 characters")
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: only letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// checkClientID keeps the client id to what brokers log and quota safely.
func checkClientID(id string) error {
	if id == "" || len(id) > 255 {
		return errors.New("want 1 to 255 characters")
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%q: printable ASCII only", id)
		}
	}
	return nil
}

type codec struct {
	name  string
	codec kgo.CompressionCodec
}

// compression maps compression= to a codec. Snappy is the default: cheap
// on the sensor's CPU, good on repetitive JSON, and every broker and
// client library reads it.
func compression(v string) (codec, error) {
	switch v {
	case "", "snappy":
		return codec{"snappy", kgo.SnappyCompression()}, nil
	case "none":
		return codec{"none", kgo.NoCompression()}, nil
	case "gzip":
		return codec{"gzip", kgo.GzipCompression()}, nil
	case "lz4":
		return codec{"lz4", kgo.Lz4Compression()}, nil
	case "zstd":
		return codec{"zstd", kgo.ZstdCompression()}, nil
	}
	return codec{}, fmt.Errorf("compression=%q: want none, gzip, snappy, lz4 or zstd", v)
}

// tlsConfig builds the TLS client configuration, or nil without TLS. Any
// TLS option turns TLS on, so that ca=FILE without tls=true never sends
// in clear by mistake; tls=false with a TLS option is a contradiction.
func tlsConfig(q url.Values) (*tls.Config, error) {
	get, has := q.Get, q.Has
	on := false
	if has("tls") {
		var err error
		if on, err = strconv.ParseBool(get("tls")); err != nil {
			return nil, fmt.Errorf("tls=%q: %w", get("tls"), err)
		}
	}
	implied := ""
	for _, k := range []string{"ca", "cert", "key", "server-name", "insecure-skip-verify"} {
		if has(k) {
			implied = k
		}
	}
	if implied == "" && !on {
		return nil, nil
	}
	if has("tls") && !on {
		return nil, fmt.Errorf("tls=false but %s= given", implied)
	}
	return alert.ClientTLS(q, "")
}

// saslMechanism builds the SASL mechanism from sasl=, user= or the URL's
// user, and password-file= or the URL's password. The mechanism is never
// guessed: a user without sasl= is an error, as is a half-given login.
func saslMechanism(spec *alert.Spec) (sasl.Mechanism, error) {
	q := spec.Query
	mech := strings.ToLower(q.Get("sasl"))
	user := q.Get("user")
	var pass string
	havePass := false
	if u := spec.URL.User; u != nil {
		if q.Has("user") {
			return nil, errors.New("user given twice (URL and user=)")
		}
		user = u.Username()
		pass, havePass = u.Password()
	}
	if f := q.Get("password-file"); f != "" {
		if havePass {
			return nil, errors.New("password given twice (URL and password-file=)")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("password-file: %w", err)
		}
		pass, havePass = strings.TrimRight(string(b), "\r\n"), true
		if pass == "" {
			return nil, fmt.Errorf("password-file: %s is empty", f)
		}
	} else if q.Has("password-file") {
		return nil, errors.New("password-file= is empty")
	}
	if mech == "" {
		if user != "" || havePass {
			return nil, errors.New("user or password given without sasl=plain|scram-sha-256|scram-sha-512")
		}
		return nil, nil
	}
	if user == "" || !havePass {
		return nil, fmt.Errorf("sasl=%s needs user= (or kafka://USER@…) and password-file=", mech)
	}
	switch mech {
	case "plain":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl=%q: want plain, scram-sha-256 or scram-sha-512", mech)
}

// Send produces the batch and waits until every record is acknowledged,
// at most the timeout (or ctx's deadline, if sooner). It returns the first
// error; the framework then resends the whole batch (at least once).
func (s *Sink) Send(ctx context.Context, batch []*alert.Record) error {
	// kgo's delivery timeout (s.timeout) should fire first, as its error
	// tells why (last err: …); the context is the backstop, and also
	// carries the caller's deadline (the framework's shutdown).
	ctx, cancel := context.WithTimeout(ctx, s.timeout+250*time.Millisecond)
	defer cancel()

	var (
		mu       sync.Mutex
		firstErr error
		failed   int
		wg       sync.WaitGroup
		badJSON  error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			failed++
			mu.Unlock()
		}
		wg.Done()
	}
	produced := 0
	for _, r := range batch {
		rec, err := s.record(r)
		if err != nil {
			badJSON = err
			continue
		}
		wg.Add(1)
		produced++
		// Produce blocks only while kgo's buffer is full, and gives up
		// (calling promise) when ctx ends.
		s.cl.Produce(ctx, rec, promise)
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// kgo fails records whose context ended when it next looks at
		// them, but a request already on the wire is awaited; give it a
		// moment to report its own error, which says more than ours.
		grace := time.NewTimer(500 * time.Millisecond)
		select {
		case <-done:
			grace.Stop()
		case <-grace.C:
			s.abandoned.Add(1)
			go func() { <-done; s.abandoned.Done() }()
			return fmt.Errorf("%s: batch of %d not acknowledged in time (timeout %s): %w", s.name, produced, s.timeout, ctx.Err())
		}
	}
	if firstErr != nil {
		return fmt.Errorf("%s: %d of %d records failed: %w", s.name, failed, produced, firstErr)
	}
	if badJSON != nil {
		// Retrying cannot encode the event any better.
		return alert.Permanent(fmt.Errorf("%s: %w", s.name, badJSON))
	}
	return nil
}

// record builds the Kafka record for one event. The value is the shared
// ECS JSON, which kgo does not modify.
func (s *Sink) record(r *alert.Record) (*kgo.Record, error) {
	val, err := r.ECSJSON()
	if err != nil {
		return nil, err
	}
	e := r.Event
	topic := s.topic
	if e.Event.Kind == alert.KindEvent {
		topic = s.obsTopic
	}
	rec := &kgo.Record{Topic: topic, Value: val, Headers: []kgo.RecordHeader{{Key: HeaderKind, Value: []byte(headerValue(e.Event.Kind))}}}
	// The timestamp is left to kgo (produce time): an event's own time
	// can be old (pcap replay) and be refused by brokers that bound
	// timestamp skew; the event time is in the JSON.
	if e.Source.IP != "" {
		rec.Key = []byte(headerValue(e.Source.IP))
	}
	return rec, nil
}

// headerValue bounds a value written outside JSON (header, key) to
// printable ASCII, 64 bytes at most. Kinds and IPs are always that; this
// only guards against a future change feeding wire data here.
func headerValue(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return strconv.QuoteToASCII(v)
		}
	}
	return v
}

// Close delivers what kgo still holds, and closes the client. Send waits
// for its records, so all that can be left are those of a Send that gave
// up, whose batch the framework has already resent or counted as failed:
// they get a short chance only, so that a dead cluster cannot hold up the
// sensor's shutdown.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), min(s.timeout, 2*time.Second))
		defer cancel()
		if err := s.cl.Flush(ctx); err != nil {
			s.closeErr = fmt.Errorf("%s: flushing at close: %w", s.name, err)
		}
		s.cl.Close() // fails whatever is left, which ends abandoned waits
		s.abandoned.Wait()
	})
	return s.closeErr
}

// String describes the sink for logs, without credentials.
func (s *Sink) String() string {
	return fmt.Sprintf("kafka brokers=%s topic=%s observations-topic=%s compression=%s",
		strings.Join(s.brokers, ","), s.topic, s.obsTopic, s.compression)
}
