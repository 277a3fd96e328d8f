// Package webhook posts events to an HTTP(S) receiver: a SOAR, a ticketing
// system, a chat bridge, a serverless function. Each batch is one POST of
// {"events": [...]}, signed with HMAC-SHA256 over the timestamp and the
// body so that the receiver can tell the sensor's requests from forged or
// replayed ones.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/eve"
)

// Headers of every request. The signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
const (
	HeaderTimestamp = "X-Phonehome-Timestamp"
	HeaderSignature = "X-Phonehome-Signature"
)

// SecretEnv names the environment variable the secret is read from when
// no secret-file is given.
const SecretEnv = "PHONEHOME_WEBHOOK_SECRET"

// DefaultTimeout bounds one POST, connection included.
const DefaultTimeout = 10 * time.Second

// DefaultMaxAge is the age Verify accepts when given none: long enough for
// clocks a little apart and a slow network, short enough that a captured
// request is soon useless.
const DefaultMaxAge = 5 * time.Minute

// Errors Verify returns, wrapped, so that a receiver can tell them apart.
var (
	ErrTimestamp = errors.New("webhook: timestamp missing, malformed or out of the accepted window")
	ErrSignature = errors.New("webhook: signature missing, malformed or not matching")
)

// options the sink takes, besides the common ones.
var options = []string{"secret-file", "header", "timeout", "ca", "insecure-skip-verify", "format"}

// reserved are headers the sink sets itself.
var reserved = []string{"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Host", "Connection", HeaderTimestamp, HeaderSignature}

// Sink posts batches to one URL. Send is called from one goroutine.
type Sink struct {
	name    string // credential-free, for errors
	target  string
	client  *http.Client
	secret  []byte
	headers http.Header
	format  alert.Format
	lastLen int // size of the last body, to size the next one
	now     func() time.Time
}

// New returns a sink for a `webhook+https://HOST[:PORT]/PATH` or
// `webhook+http://…` spec. Its options:
//
//	secret-file=FILE          HMAC secret (trailing newline trimmed); default $PHONEHOME_WEBHOOK_SECRET, else unsigned
//	header=Name:Value         extra static header, repeatable
//	timeout=DUR               per request, connection included (default 10s)
//	ca=FILE                   PEM CA bundle trusted instead of the system roots (https only)
//	insecure-skip-verify=true no certificate check (https only; for tests)
//	format=ecs|eve            the events as ECS (default) or Suricata EVE objects
//
// A secret in the URL (secret=) is refused: command lines are visible to
// every local user and end up in shell histories and process listings.
func New(spec *alert.Spec) (*Sink, error) {
	if spec == nil || spec.URL == nil {
		return nil, errors.New("webhook: no URL")
	}
	scheme, ok := strings.CutPrefix(spec.Scheme, "webhook+")
	if !ok || (scheme != "https" && scheme != "http") {
		return nil, fmt.Errorf("webhook %s: scheme %q: want webhook+https or webhook+http", spec.Config.Name, spec.Scheme)
	}
	q := spec.Query
	if _, ok := q["secret"]; ok {
		// The value is not repeated: it would land in the logs.
		return nil, fmt.Errorf("webhook %s: option secret= refused: a secret does not belong on a command line; use secret-file=FILE or $%s", spec.Config.Name, SecretEnv)
	}
	if err := spec.Unknown(options...); err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("webhook %s: "+format, append([]any{spec.Config.Name}, a...)...)
	}
	for _, k := range options {
		if k != "header" && len(q[k]) > 1 {
			return nil, fail("option %s given %d times", k, len(q[k]))
		}
	}
	s := &Sink{name: spec.Config.Name, headers: http.Header{}, format: alert.ECSFormat, now: time.Now}

	target := *spec.URL
	target.Scheme = scheme
	target.RawQuery, target.ForceQuery, target.Fragment, target.RawFragment = "", false, "", ""
	s.target = target.String()

	if f := q.Get("secret-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fail("secret-file: %w", err)
		}
		s.secret = bytes.TrimRight(b, "\r\n")
		if len(s.secret) == 0 {
			return nil, fail("secret-file %s is empty", f)
		}
	} else if _, ok := q["secret-file"]; ok {
		return nil, fail("secret-file= needs a file name")
	} else if v := os.Getenv(SecretEnv); v != "" {
		s.secret = []byte(v)
	}

	for _, h := range q["header"] {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		// The value may be a token: errors name the header only.
		switch {
		case !ok || !httpguts.ValidHeaderFieldName(name):
			return nil, fail("option header=%q: want header=Name:Value with a valid header name", name)
		case !httpguts.ValidHeaderFieldValue(value):
			return nil, fail("option header=%s: the value holds a control character (CR, LF, NUL…)", name)
		}
		for _, r := range reserved {
			if strings.EqualFold(name, r) {
				return nil, fail("option header=%s: set by the sink itself", name)
			}
		}
		s.headers.Add(name, value)
	}

	timeout := DefaultTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fail("option timeout=%q: want a positive duration such as 10s", v)
		}
		timeout = d
	}

	switch f := q.Get("format"); f {
	case "", "ecs":
	case "eve":
		s.format = eve.Format
	default:
		return nil, fail("option format=%q: want ecs or eve", f)
	}

	if scheme == "http" && (q.Has("ca") || q.Has("insecure-skip-verify")) {
		return nil, fail("options ca and insecure-skip-verify are for webhook+https only")
	}
	tlsConf, err := alert.ClientTLS(q, "")
	if err != nil {
		return nil, fail("%w", err)
	}

	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // HTTPS_PROXY, as enterprise networks need
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	s.client = &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirected POST becomes a GET without the body (301–303) and
		// would send the signature to another host: the receiver's final
		// URL belongs in the configuration.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Signed tells whether requests carry a signature; an unsigned webhook is
// worth a warning in the logs.
func (s *Sink) Signed() bool { return len(s.secret) > 0 }

// Send posts the batch as one request. Network errors, timeouts and the
// statuses 408, 429 and 5xx are returned for a retry; any other non-2xx
// status is permanent, as retrying the same body cannot help.
func (s *Sink) Send(ctx context.Context, batch []*alert.Record) error {
	body, encErr := s.body(batch)
	if body == nil {
		return alert.Permanent(encErr)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target, bytes.NewReader(body))
	if err != nil {
		return alert.Permanent(fmt.Errorf("webhook %s: %w", s.name, err))
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "phonehome-webhook")
	if s.Signed() {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", s.name, err)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if encErr != nil {
			return alert.Permanent(encErr) // the others went through
		}
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("webhook %s: %s%s", s.name, resp.Status, quoted(snippet))
	case code >= 300 && code < 400:
		return alert.Permanent(fmt.Errorf("webhook %s: %s to %q: redirects are not followed, configure the final URL",
			s.name, resp.Status, bound(resp.Header.Get("Location"), 200)))
	}
	return alert.Permanent(fmt.Errorf("webhook %s: refused: %s%s", s.name, resp.Status, quoted(snippet)))
}

// body is {"events":[…]} with each record's line as it is (the ECS line
// is encoded once for every sink). Records that cannot be encoded are
// left out and reported in the error; the body is nil when none is left.
func (s *Sink) body(batch []*alert.Record) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, max(s.lastLen+s.lastLen/4, 512)))
	buf.WriteString(`{"events":[`)
	var errs []error
	n := 0
	for _, r := range batch {
		line, err := s.format(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(line)
		n++
	}
	buf.WriteString("]}")
	var err error
	if len(errs) > 0 {
		err = fmt.Errorf("webhook %s: %d events not encoded: %w", s.name, len(errs), errors.Join(errs...))
	}
	if n == 0 {
		if err == nil {
			err = fmt.Errorf("webhook %s: empty batch", s.name)
		}
		return nil, err
	}
	s.lastLen = buf.Len()
	return buf.Bytes(), err
}

// quoted shows what a receiver answered, escaped and bounded: it goes to
// the logs.
func quoted(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	return ": " + strconv.Quote(bound(string(b), 200))
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Close drops idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Sign returns the value of the signature header for a body sent at
// timestamp (Unix seconds, as in the timestamp header).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request the way a receiver should: timestamp and
// signature are the values of the X-Phonehome-Timestamp and
// X-Phonehome-Signature headers, body the raw request body (before any
// JSON decoding). It fails with ErrTimestamp when the timestamp is more
// than maxAge from now, either way (DefaultMaxAge when maxAge <= 0):
// a replayed request is refused once that window has passed, and a receiver
// that must refuse every replay also remembers the signatures it accepted
// within the window. It fails with ErrSignature when the body or the
// timestamp was changed or the secret differs. The comparison takes
// constant time.
func Verify(secret []byte, timestamp, signature string, body []byte, maxAge time.Duration, now time.Time) error {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrTimestamp, bound(timestamp, 40))
	}
	if age := now.Sub(time.Unix(sec, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("%w: %s apart from now, more than %s", ErrTimestamp, age.Round(time.Second), maxAge)
	}
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: want sha256=HEX", ErrSignature)
	}
	mac, err := hex.DecodeString(got)
	if err != nil || len(mac) != sha256.Size {
		return fmt.Errorf("%w: want sha256= and 64 hex digits", ErrSignature)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, body), "sha256="))
	if !hmac.Equal(mac, want) {
		return ErrSignature
	}
	return nil
}
