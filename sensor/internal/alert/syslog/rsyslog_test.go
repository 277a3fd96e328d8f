package syslog

import (
	"context"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// receiver is a real rsyslogd with one input (UDP, TCP or TLS).
type receiver struct {
	*testsvc.Rsyslog
	t *testing.T
}

// newReceiver starts rsyslogd with the input of cfg and waits until it
// listens; the test is skipped when rsyslogd is not installed.
func newReceiver(t *testing.T, cfg testsvc.RsyslogOptions) *receiver {
	t.Helper()
	return &receiver{Rsyslog: testsvc.StartRsyslog(t, cfg), t: t}
}

// lines waits until the input's file holds n lines and returns them.
func (r *receiver) lines(n int) []string {
	r.t.Helper()
	file := r.TCPFile
	if r.UDPPort != 0 {
		file = r.UDPFile
	}
	lines, b := r.Lines(r.t, file, n, 0)
	if len(lines) != n {
		r.t.Fatalf("rsyslogd wrote %d lines, want %d:\n%s\nrsyslogd: %s", len(lines), n, b, r.Log())
	}
	return lines
}

// ctx is a test context that ends before the test's timeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
