// Package syslog sends events to a syslog receiver: one RFC 5424 message
// per event, whose MSG is the event's ECS JSON line, over UDP (RFC 5426),
// TCP (RFC 6587 octet counting) or TLS (RFC 5425).
//
// The JSON goes out as it is (MSG-ANY, no BOM: many receivers keep a BOM
// in the message and break JSON parsing). Header fields are built with
// go-syslog's RFC 5424 builder, which validates them; the only field that
// comes from the configuration, the hostname, is reduced to safe ASCII
// first, and no wire string ever reaches the header.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
)

// Defaults.
const (
	// DefaultFacility is local0: the facilities meant for local use are
	// the ones a receiver can route to a SIEM without catching system logs.
	DefaultFacility = 16
	// DefaultMaxSizeUDP bounds a datagram. RFC 5426 only says receivers
	// should accept 2048 bytes, but a typical alert is 1.4 KB and one
	// about a long name passes 2048 (the name is in it four times);
	// 8 KiB is rsyslog's default limit, and syslog-ng's is larger.
	// Strict receivers: max-size=2048.
	DefaultMaxSizeUDP = 8 << 10
	// DefaultMaxSizeStream bounds a TCP or TLS message. Note that
	// rsyslog's own default $MaxMessageSize is 8 KiB.
	DefaultMaxSizeStream = 64 << 10
	// Timeout bounds a dial (with the TLS handshake) and each write, on
	// top of the caller's context.
	Timeout = 10 * time.Second

	appName = "phonehome"
	// maxUDP is the largest UDP payload over IPv4.
	maxUDP = 65507
	// maxStream is a sanity bound for max-size on streams.
	maxStream = 16 << 20
	// flushAt is how much a stream sink buffers before writing.
	flushAt = 64 << 10
)

// facilities are the names facility= takes (RFC 5424 table 1, with the
// names syslog.conf uses).
var facilities = map[string]uint8{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Syslog severities (RFC 5424 table 2) the sink uses.
const (
	sevCrit    = 2
	sevErr     = 3
	sevWarning = 4
	sevInfo    = 6
)

// Sink is a syslog output. It is used from one goroutine at a time, as
// alert.Outputs does.
type Sink struct {
	name     string // for errors: credential-free, from the spec
	network  string // udp or tcp
	addr     string
	tls      *tls.Config // syslog+tls
	facility uint8
	maxSize  int
	timeout  time.Duration
	procID   string
	host     string // hostname when an event has no observer.hostname

	conn net.Conn
	buf  []byte // stream: frames waiting to be written
	msg  []byte // the message being formatted
}

// New opens a sink for a syslog+udp, syslog+tcp or syslog+tls spec. It
// does not connect: the first Send does.
//
// Options: facility=NAME|0-23 (default local0); max-size=BYTES (largest
// message, without the TCP length prefix: 8 KiB for UDP, 64 KiB for TCP
// and TLS). TLS only: ca=FILE (PEM roots; default the system's),
// cert=FILE and key=FILE (a client certificate), server-name=NAME (the
// name to verify, default the host of the URL), insecure-skip-verify=true
// (no verification at all: for tests only).
func New(spec *alert.Spec) (*Sink, error) {
	if spec.URL == nil {
		return nil, fmt.Errorf("syslog: %s: want a URL such as %s://HOST:PORT", spec.Scheme, spec.Scheme)
	}
	s := &Sink{name: spec.Config.Name, facility: DefaultFacility, timeout: Timeout, procID: strconv.Itoa(os.Getpid())}
	known := []string{"facility", "max-size"}
	port := "514"
	maxSize := DefaultMaxSizeStream
	limit := maxStream
	switch spec.Scheme {
	case "syslog+udp":
		s.network = "udp"
		maxSize, limit = DefaultMaxSizeUDP, maxUDP
	case "syslog+tcp":
		s.network = "tcp"
	case "syslog+tls":
		s.network = "tcp"
		port = "6514"
		known = append(known, "ca", "cert", "key", "server-name", "insecure-skip-verify")
	default:
		return nil, fmt.Errorf("syslog: unknown scheme %q (want syslog+udp, syslog+tcp or syslog+tls)", spec.Scheme)
	}
	if err := spec.Unknown(known...); err != nil {
		return nil, err
	}
	if spec.URL.User != nil || (spec.URL.Path != "" && spec.URL.Path != "/") {
		return nil, fmt.Errorf("syslog: %s: want %s://HOST[:PORT], without user or path", s.name, spec.Scheme)
	}
	host := spec.URL.Hostname()
	if host == "" {
		return nil, fmt.Errorf("syslog: %s: no host", s.name)
	}
	if p := spec.URL.Port(); p != "" {
		port = p
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return nil, fmt.Errorf("syslog: %s: bad port %q", s.name, port)
	}
	s.addr = net.JoinHostPort(host, port)

	q := spec.Query
	if v := q.Get("facility"); v != "" {
		f, err := parseFacility(v)
		if err != nil {
			return nil, fmt.Errorf("syslog: %s: option facility=%q: %w", s.name, v, err)
		}
		s.facility = f
	}
	if v := q.Get("max-size"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil && (n < 480 || n > limit) {
			// 480 is what every receiver must take (RFC 5426), and
			// less leaves no room for an event.
			err = fmt.Errorf("not between 480 and %d", limit)
		}
		if err != nil {
			return nil, fmt.Errorf("syslog: %s: option max-size=%q: %w", s.name, v, err)
		}
		maxSize = n
	}
	s.maxSize = maxSize
	if spec.Scheme == "syslog+tls" {
		cfg, err := alert.ClientTLS(q, host)
		if err != nil {
			return nil, fmt.Errorf("syslog: %s: %w", s.name, err)
		}
		s.tls = cfg
	}
	if h, err := os.Hostname(); err == nil {
		s.host = sanitizeHostname(h)
	}
	return s, nil
}

func parseFacility(v string) (uint8, error) {
	if f, ok := facilities[strings.ToLower(v)]; ok {
		return f, nil
	}
	if n, err := strconv.ParseUint(v, 10, 8); err == nil && n <= 23 {
		return uint8(n), nil
	}
	return 0, errors.New("want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0 to local7, or 0 to 23")
}

// Send writes one message per event. Events longer than max-size are
// skipped (a cut JSON line is of no use to anyone), as are events that
// cannot be encoded; the rest are sent, and a PartlyFailed error then
// counts the skipped ones as failed. On a write error the connection is
// closed and the error returned: the retry reconnects and sends the whole
// batch again, so a receiver may see an event twice (at least once).
func (s *Sink) Send(ctx context.Context, batch []*alert.Record) error {
	if s.conn != nil && !alive(s.conn) {
		s.closeConn()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	c := s.conn // write may close s.conn and clear it
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()

	var skipped, broken int
	var brokenErr error
	s.buf = s.buf[:0]
	for _, r := range batch {
		var err error
		s.msg, err = s.appendMessage(s.msg[:0], r)
		if err != nil {
			broken++
			brokenErr = err
			continue
		}
		if len(s.msg) > s.maxSize {
			skipped++
			continue
		}
		if s.network == "udp" {
			// One message per datagram (RFC 5426).
			if err := s.write(ctx, s.msg); err != nil {
				return err
			}
			continue
		}
		// RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG.
		s.buf = strconv.AppendInt(s.buf, int64(len(s.msg)), 10)
		s.buf = append(s.buf, ' ')
		s.buf = append(s.buf, s.msg...)
		if len(s.buf) >= flushAt {
			if err := s.write(ctx, s.buf); err != nil {
				return err
			}
			s.buf = s.buf[:0]
		}
	}
	if len(s.buf) > 0 {
		if err := s.write(ctx, s.buf); err != nil {
			return err
		}
	}
	var errs []error
	if skipped > 0 {
		errs = append(errs, fmt.Errorf("syslog %s: %d of %d events longer than max-size %d bytes not sent", s.name, skipped, len(batch), s.maxSize))
	}
	if broken > 0 {
		errs = append(errs, fmt.Errorf("syslog %s: %d of %d events could not be encoded: %w", s.name, broken, len(batch), brokenErr))
	}
	return alert.PartlyFailed(skipped+broken, errors.Join(errs...))
}

// appendMessage appends r as one RFC 5424 message: the header, built and
// checked by go-syslog, then the ECS JSON as MSG.
func (s *Sink) appendMessage(dst []byte, r *alert.Record) ([]byte, error) {
	js, err := r.ECSJSON()
	if err != nil {
		return dst, err
	}
	hdr, err := s.header(r.Event)
	if err != nil {
		return dst, err
	}
	dst = append(dst, hdr...)
	dst = append(dst, ' ')
	return append(dst, js...), nil
}

// header is the message up to the structured data, which is "-": every
// field a receiver could want is in the JSON.
func (s *Sink) header(e *alert.Event) (string, error) {
	var m rfc5424.SyslogMessage
	m.SetPriority(s.facility*8 + severity(e))
	m.SetVersion(1)
	ts := e.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	// The builder ignores what it cannot parse (a year past 9999): the
	// timestamp is then "-", which RFC 5424 allows.
	m.SetTimestamp(ts.Truncate(time.Microsecond).Format(rfc5424.RFC3339MICRO))
	host := sanitizeHostname(e.Observer.Hostname)
	if host == "" {
		host = s.host
	}
	msgID := "event"
	if e.Event.Kind == alert.KindAlert {
		msgID = "alert"
	}
	m.SetAppname(appName).SetProcID(s.procID).SetMsgID(msgID)
	if host != "" {
		m.SetHostname(host)
	}
	// The builder drops a field it finds invalid without saying so:
	// check that every one went in.
	if m.Appname == nil || m.ProcID == nil || m.MsgID == nil || (host != "" && (m.Hostname == nil || *m.Hostname != host)) {
		return "", fmt.Errorf("syslog header refused: hostname %q, procid %q", host, s.procID)
	}
	h, err := m.String()
	if err != nil {
		return "", fmt.Errorf("syslog header: %w", err)
	}
	return h, nil
}

// severity maps an event to a syslog severity. Alerts go by ECS
// event.severity, on the ranges of Elastic detection rules (critical 74
// and above, high 48 to 73, below that medium and low), and are never
// below warning: an alert is worth someone's attention. Observations are
// informational.
func severity(e *alert.Event) uint8 {
	if e.Event.Kind != alert.KindAlert {
		return sevInfo
	}
	switch s := e.Event.Severity; {
	case s >= 74:
		return sevCrit
	case s >= 48:
		return sevErr
	}
	return sevWarning
}

// sanitizeHostname keeps what a host name, an IPv4 or IPv6 address may
// hold, replacing anything else with "_", and keeps at most the 255
// characters RFC 5424 allows; a lone "-" (the nil value) becomes "".
func sanitizeHostname(h string) string {
	if len(h) > 255 {
		h = h[:255]
	}
	b := []byte(h)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			b[i] = '_'
		}
	}
	if string(b) == "-" {
		return ""
	}
	return string(b)
}

func (s *Sink) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: s.timeout}
	var c net.Conn
	var err error
	if s.tls != nil {
		// The timeout covers the handshake too.
		c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		c, err = d.DialContext(ctx, s.network, s.addr)
	}
	if err != nil {
		return fmt.Errorf("syslog %s: connecting: %w", s.name, err)
	}
	s.conn = c
	return nil
}

// write writes b, or closes the connection: the next Send dials again.
func (s *Sink) write(ctx context.Context, b []byte) error {
	d := time.Now().Add(s.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	s.conn.SetWriteDeadline(d)
	// After the deadline is set: a cancellation from now on moves it to
	// the past (Send's AfterFunc), one before is seen here.
	err := ctx.Err()
	if err == nil {
		_, err = s.conn.Write(b)
	}
	if err != nil {
		s.closeConn()
		return fmt.Errorf("syslog %s: writing: %w", s.name, err)
	}
	return nil
}

func (s *Sink) closeConn() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Close closes the connection.
func (s *Sink) Close() error { return s.closeConn() }
